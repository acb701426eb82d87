"""The stream job rides out faults by itself, one job through all of them in turn (a start and a drain cost
about 20 s each, so they are paid once): a killed connection and a PostgreSQL restart (the sink retries the
batch it is in, the job process stays the same), a broker restart, and a SIGKILL of the job's process (its
supervisor starts it again). The last test drains the run: nothing lost, nothing doubled, through every fault."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from core.settings import Settings
from infra.orchestration.harness import PipelineRun, sandbox
from infra.orchestration.processes import Producing, StreamProcess, job_health, job_metrics
from producers.options import ProduceOptions
from tests.fixtures.database import scalar
from tests.fixtures.faults import child_pids, postgres_immediate_stop, postgres_start, terminate_writer_sessions
from tests.fixtures.pipeline import TEST_JOB, batches_picked_up_since, drain_and_account, ledger_rows
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Healing:
    """The module's one run: the job and the producer (1,000 events/s until the last test ends it)."""

    settings: Settings
    run: PipelineRun
    stream: StreamProcess
    producing: Producing

    def worker(self) -> list[int]:
        """The job's process (the Spark driver), under its supervisor."""
        return child_pids(self.stream.proc.pid)

    def process_restarts(self) -> float:
        """Restarts of the job's process by its supervisor (a new process carries them on; restarts of the query
        inside one process, reason query_failed, start again from 0 with it)."""
        m = job_metrics(self.settings)
        return sum(v for k, v in m.items() if k.startswith("restarts:") and k != "restarts:query_failed")

    def metric(self, name: str) -> float:
        """The sum of one metric's samples on the job's own /metrics."""
        return job_metrics(self.settings).get(name, 0.0)


@pytest.fixture(scope="module")
def healing(running_stack, tmp_path_factory) -> Iterator[Healing]:
    checkpoint = tmp_path_factory.mktemp("healing") / "checkpoint"
    with sandbox(running_stack, kind="test", checkpoint=checkpoint, max_offsets_per_trigger=4000, **TEST_JOB) as box:
        stream = StreamProcess(box.settings, box.options)
        run = PipelineRun(box.settings, stream)
        run.mark_start()
        stream.start()
        # Bounded far beyond the three faults; the last test ends it once they are ridden out.
        producing = Producing(box.settings, ProduceOptions(rate=1000, duration_s=900, run_id="heal"))
        producing.start()
        try:
            wait_for(
                lambda: scalar(box.settings, "SELECT count(*) FROM sink_ledger WHERE records_in > 0"),
                90,
                "the first commit of produced events",
            )
            yield Healing(box.settings, run, stream, producing)
        finally:
            producing.finish(180)
            stream.kill()


def test_the_job_rides_out_a_killed_connection_and_a_postgres_restart(healing, alert_receiver):
    """...in the batch it is in, the job process the same; and while PostgreSQL is down, Prometheus's alert on the
    job's own health signal reaches a webhook through Alertmanager."""
    settings = healing.settings
    if settings.postgres_host not in (None, settings.host):
        pytest.skip("an external PostgreSQL is not ours to restart")
    worker = healing.worker()
    committed = ledger_rows(settings)
    assert terminate_writer_sessions(settings) >= 1
    wait_for(lambda: ledger_rows(settings) > committed, 30, "a commit after the killed connection")
    assert healing.metric("shopstream_sink_retries_total") >= 1, "the killed connection was retried, and said so"

    committed = ledger_rows(settings)
    postgres_immediate_stop(settings)
    try:
        down_since = time.monotonic()
        # Down until the job itself shows it is retrying: detection, read from the job's own metrics.
        wait_for(lambda: healing.metric("shopstream_sink_retrying") == 1, 30, "the job to report retrying")
        detected_s = time.monotonic() - down_since
        # Kept down until someone is told: scrape (5 s), the rule's 10 s, Alertmanager's group wait (5 s).
        wait_for(lambda: alert_receiver.firing("ShopstreamSinkRetrying"), 90, "the alert at the webhook")
        healthy, why = job_health(settings)
        assert not healthy and "retrying" in why, why
    finally:
        postgres_start(settings)
    back_since = time.monotonic()
    wait_for(lambda: ledger_rows(settings) > committed, 60, "a commit after the restart")
    recovered_s = time.monotonic() - back_since
    assert healing.worker() == worker, "the job was not restarted by anyone: it must be the same process"
    assert wait_for(lambda: job_health(settings)[0], 30, "the job to report itself healthy again")
    assert detected_s < 10 and recovered_s < 40, (detected_s, recovered_s)


def test_the_job_rides_out_a_broker_restart(healing):
    """kill -9 of the broker, started again once the job reports itself stalled: the job and the producer carry
    on by themselves."""
    from infra.runtime.services.kafka import Kafka

    settings = healing.settings
    if settings.bootstrap_servers:
        pytest.skip("an external Kafka is not ours to restart")
    broker = Kafka(settings)
    os.kill(broker.process.pid(), signal.SIGKILL)
    try:
        wait_for(lambda: broker.process.pid() is None, 30, "the broker to die")
        # Down until the job itself reports it: stalled (Kafka cannot be asked, nothing committed for 10 s)
        wait_for(lambda: healing.metric("shopstream_stream_stalled") == 1, 60, "the job to report a stall")
    finally:
        broker.start()  # returns once the broker answers again
    back_at = time.time()
    # Recovered: a batch read from Kafka after the restart has committed (the producer is still at it)
    wait_for(lambda: batches_picked_up_since(settings, back_at), 120, "a batch read after the broker's restart")
    recovered_s = time.time() - back_at
    print(f"broker restart: a batch read after it committed {recovered_s:.1f} s after it answered again")
    assert healing.stream.alive(), "the job's supervisor carried on"
    assert recovered_s < 60, recovered_s


def test_a_killed_job_process_is_restarted_by_its_supervisor(healing):
    """SIGKILL of the job's process (the Spark driver): its supervisor starts it again from the checkpoint, and
    nobody else does anything."""
    settings = healing.settings
    restarts = healing.process_restarts()
    committed = ledger_rows(settings)
    (worker,) = healing.worker()
    os.kill(worker, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for(
        lambda: ledger_rows(settings) > committed and healing.worker() not in ([], [worker]),
        120,
        "commits from a restarted job process",
    )
    recovered_s = time.monotonic() - killed_at
    assert healing.stream.alive(), "the supervisor itself carried on"
    # One more than before the kill (the broker's restart may have cost one already, as in some chaos runs).
    wait_for(lambda: healing.process_restarts() == restarts + 1, 30, "the process restart counted")
    assert recovered_s < 120


def test_through_every_fault_nothing_was_lost_or_duplicated(healing):
    healing.producing.finish(180)  # what it was for has happened: no need to produce on
    drain_and_account(healing.run, healing.producing.result.manifest)
