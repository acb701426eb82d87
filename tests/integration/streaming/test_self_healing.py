"""The stream job rides out database faults by itself: the sink retries the micro-batch
it is in, the job is never restarted, and the accounting stays exact."""

from __future__ import annotations

import os
import signal
import time

import pytest

from infra.orchestration.processes import job_health, job_metrics
from producers.options import ProduceOptions
from tests.fixtures.database import scalar
from tests.fixtures.faults import child_pids, postgres_immediate_stop, postgres_start, terminate_writer_sessions
from tests.fixtures.pipeline import (
    UNTIL_FINISHED_S,
    batches_picked_up_since,
    drain_and_account,
    ledger_rows,
    start_job_and_producer,
)
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.alone]  # they stop PostgreSQL and Kafka; the alert is scraped


def job_metric(settings, name: str) -> float:
    """The sum of one metric's samples on the stream job's own /metrics."""
    return job_metrics(settings).get(name, 0.0)


def test_the_job_rides_out_a_killed_connection_and_a_postgres_restart(pipeline_env, alert_receiver):
    """...and while PostgreSQL is down, Prometheus's alert on the job's own health signal reaches a webhook
    through Alertmanager."""
    settings, options = pipeline_env
    if settings.postgres_host not in (None, settings.host):
        pytest.skip("an external PostgreSQL is not ours to restart")
    stopped: list[bool] = []  # PostgreSQL is down on purpose: started again whatever happens
    run, stream, producing = start_job_and_producer(
        settings,
        options.model_copy(update={"max_offsets_per_trigger": 4000}),
        ProduceOptions(rate=2500, duration_s=UNTIL_FINISHED_S, run_id="heal"),
    )
    try:
        committed = wait_for(lambda: ledger_rows(settings), 90, "the first commit")
        assert terminate_writer_sessions(settings) >= 1
        wait_for(lambda: ledger_rows(settings) > committed, 30, "a commit after the killed connection")
        retries = job_metric(settings, "shopstream_sink_retries_total")
        assert retries >= 1, "the killed connection was retried, and the job's metrics say so"

        committed = ledger_rows(settings)
        postgres_immediate_stop(settings)
        stopped.append(True)
        down_since = time.monotonic()
        # Down until the job itself shows it is retrying: detection, read from the job's own metrics.
        wait_for(lambda: job_metric(settings, "shopstream_sink_retrying") == 1, 30, "the job to report retrying")
        detected_s = time.monotonic() - down_since
        # Kept down until someone is told: scrape (5 s), the rule's 10 s, Alertmanager's group wait (5 s).
        wait_for(lambda: alert_receiver.firing("ShopstreamSinkRetrying"), 90, "the alert at the webhook")
        healthy, why = job_health(settings)
        assert not healthy and "retrying" in why, why
        postgres_start(settings)
        stopped.clear()
        back_since = time.monotonic()
        wait_for(lambda: ledger_rows(settings) > committed, 60, "a commit after the restart")
        recovered_s = time.monotonic() - back_since
        assert stream.alive(), "the job was not restarted by anyone: it must still be the same process"
        assert wait_for(lambda: job_health(settings)[0], 30, "the job to report itself healthy again")
    finally:
        if stopped:
            postgres_start(settings)
            stream.kill()
        producing.finish(120)  # what it was for has happened: no need to produce on
    drain_and_account(run, producing.result.manifest)
    assert detected_s < 10 and recovered_s < 40, (detected_s, recovered_s)


def test_a_killed_job_process_is_restarted_by_its_supervisor(pipeline_env):
    """SIGKILL of the job's process (the Spark driver): its supervisor starts it again from the
    checkpoint, nobody else does anything, and the accounting stays exact."""
    settings, options = pipeline_env
    run, stream, producing = start_job_and_producer(
        settings, options, ProduceOptions(rate=2500, duration_s=UNTIL_FINISHED_S, run_id="supervised")
    )  # supervised: the default
    try:
        committed = wait_for(lambda: ledger_rows(settings), 90, "the first commit")
        (worker,) = child_pids(stream.proc.pid)
        os.kill(worker, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(
            lambda: ledger_rows(settings) > committed and child_pids(stream.proc.pid) not in ([], [worker]),
            120,
            "commits from a restarted job process",
        )
        recovered_s = time.monotonic() - killed_at
        assert stream.alive(), "the supervisor itself carried on"
        assert job_metric(settings, "shopstream_stream_restarts_total") == 1
    finally:
        producing.finish(120)  # what it was for has happened: no need to produce on
    drain_and_account(run, producing.result.manifest)
    assert recovered_s < 120


def test_the_job_rides_out_a_broker_restart(pipeline_env):
    """kill -9 of the broker, started again once the job reports itself stalled: the job and the producer carry on by themselves,
    and the accounting stays exact."""
    from infra.runtime.services.kafka import Kafka

    settings, options = pipeline_env
    if settings.bootstrap_servers:
        pytest.skip("an external Kafka is not ours to restart")
    broker = Kafka(settings)
    run, stream, producing = start_job_and_producer(
        settings, options, ProduceOptions(rate=2500, duration_s=UNTIL_FINISHED_S, run_id="broker")
    )
    try:
        # A commit of produced events (the job may commit an empty first batch before the producer's first
        # acknowledgement): the producer has heard from Kafka before the broker dies.
        wait_for(
            lambda: scalar(settings, "SELECT count(*) FROM sink_ledger WHERE records_in > 0"),
            90,
            "the first commit of produced events",
        )
        os.kill(broker.process.pid(), signal.SIGKILL)
        wait_for(lambda: broker.process.pid() is None, 30, "the broker to die")
        # Down until the job itself reports it: stalled (Kafka cannot be asked, nothing committed for 10 s)
        wait_for(lambda: job_metric(settings, "shopstream_stream_stalled") == 1, 60, "the job to report a stall")
        broker.start()  # returns once the broker answers again
        back_at = time.time()
        # Recovered: a batch read from Kafka after the restart has committed (the producer is still at it)
        wait_for(lambda: batches_picked_up_since(settings, back_at), 120, "a batch read after the broker's restart")
        recovered_s = time.time() - back_at
        print(f"broker restart: a batch read after it committed {recovered_s:.1f} s after it answered again")
        assert stream.alive(), "the job's supervisor carried on"
    finally:
        if broker.process.pid() is None:
            broker.start()
        producing.finish(180)  # what it was for has happened: no need to produce on
    drain_and_account(run, producing.result.manifest)
    assert recovered_s < 60, recovered_s
