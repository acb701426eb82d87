"""The fault matrix against the live pipeline.

One run: produce ``events`` at ``rate`` into topics of the scenario's own; part-way through,
inject the fault; hold it; clear it; then drain and account exactly as `run` does (Kafka
offsets, the ledger, SQL), against the producer's manifest.

- **Detection** runs from the fault to the timestamp the platform itself put on seeing it,
  read from the job's own /metrics (not Prometheus, which scrapes every 5 s): when the sink
  began retrying, when the query failed or the supervisor saw the process end; for a
  killed service, when the watchdog found it gone; cut from Kafka, when it found itself
  stalled (input waiting, or Kafka unreachable, and nothing committed for 10 s); with a standby driver, when it
  took the lease over.
- **Recovery** runs from the fault being cleared (for a kill: the kill itself) until the job
  has committed since and lag, log end minus the ledger, is back under its level in the
  3 s before the fault.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import signal
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import schemas
from core import ledger
from core.database import connect
from core.kafka import OffsetProbe
from core.settings import Settings
from db.migrate import migrate
from infra.chaos import faults
from infra.chaos.options import ChaosOptions
from infra.orchestration.harness import PipelineRun
from infra.orchestration.processes import ProducerProcess, Producing, StreamProcess, job_metrics
from infra.runtime import stack, watchdog
from infra.runtime.services import patroni
from infra.runtime.services.kafka import Kafka, grant_pipeline_access, over_sasl_ssl, revoke_pipeline_access
from infra.runtime.services.patroni import PatroniMember
from infra.runtime.services.postgres import create_database, drop_database
from infra.runtime.services.registry import Registry
from infra.runtime.topics import delete_topics, ensure_topics, load_topic_specs
from producers.dimensions import load_dimensions
from producers.options import ProduceOptions
from streaming import lease as leases
from streaming.options import StreamOptions

log = logging.getLogger(__name__)

#: The seed's failure-recovery table (detection s, recovery s), and which of its rows each scenario is.
SEED: dict[str, tuple[float, float] | None] = {
    "worker failure": (15, 45),
    "database connection loss": (5, 12),
    "database primary lost": None,  # the seed had one PostgreSQL: not survivable
    "file system full": (30, 180),
    "network partition": (25, 90),
}


@dataclass
class RunResult:
    scenario: str
    run: int
    produced: int
    unique_events: int
    lost: int
    duplicates: int
    quality_matches_manifest: bool
    detection_s: float | None
    recovery_s: float | None
    handled_by: str
    after_back_s: float | None = None  # a killed service: recovery counted from the watchdog having it back
    rejoin_s: float | None = None  # a lost PostgreSQL primary: from its node's return to its being a synced standby


# The scenarios --------------------------------------------------------------------------------
@dataclass
class Scenario:
    name: str
    seed_row: str
    inject: Callable[[Harness, int], None]
    signal: str  # "retry", "failure", "stall", "watchdog:<service>", or "none"
    hold_s: float = 0.0  # how long the fault lasts before it is cleared; 0 = a kill
    clear: Callable[[Harness], None] = lambda h: None
    setup: Callable[[Harness], contextlib.AbstractContextManager] = lambda h: contextlib.nullcontext()
    producer_process: bool = False  # the producer as a child process that can be killed (else a thread)
    standby: bool = False  # the job runs with a warm standby driver (`stream --standby`)
    target_s: tuple[float | None, float] | None = None  # (detection, recovery); default: half the seed's
    after_recovery: Callable[[Harness], float | None] = lambda h: None  # once recovery is measured; its seconds


def _active_driver(h: Harness) -> int:
    """The pid of the driver that holds the pipeline's lease (with a standby, one of two)."""
    row = leases.read(h.stream.settings, h.stream.options.pipeline)
    if row is None:
        raise RuntimeError("the stream job holds no lease")
    return int(row.holder.rpartition(":")[2])


def _kill_job(h: Harness, run: int) -> None:
    """SIGKILL of the active driver's process; every other run waits until the sink is inside its transaction."""
    worker = _active_driver(h)
    if run % 2 == 1:
        with contextlib.suppress(TimeoutError):
            faults.wait_until(lambda: faults.writer_in_transaction(h.settings), 10, "the sink's transaction", 0.005)
    os.kill(worker, signal.SIGKILL)


def _kill_jvm(h: Harness, run: int) -> None:
    (jvm,) = [p for p in faults.child_pids(_active_driver(h)) if faults.comm(p) == "java"]
    os.kill(jvm, signal.SIGKILL)


HANG_S = 20.0


def _hang_driver(h: Harness, run: int) -> None:
    """SIGSTOP of the active driver's process (its JVM runs on, waiting on it); SIGCONT HANG_S later, when the
    standby has long taken over: it finds itself fenced."""
    worker = _active_driver(h)
    os.kill(worker, signal.SIGSTOP)
    threading.Timer(HANG_S, lambda: os.kill(worker, signal.SIGCONT)).start()


def _kill_service(service_type) -> Callable[[Harness, int], None]:
    def kill(h: Harness, run: int) -> None:
        pid = service_type(h.settings).process.pid()
        if pid is None:
            raise RuntimeError(f"{service_type.name} is not running here: the scenario kills a local service")
        os.kill(pid, signal.SIGKILL)

    return kill


@contextlib.contextmanager
def _watchdog(h: Harness) -> Iterator[None]:
    """The services' watchdog, the recovery path for a killed service."""
    stop = threading.Event()
    dog = threading.Thread(
        target=watchdog.watch,
        args=(h.settings.model_copy(update={"watchdog_interval_s": 0.5}), stop),
        name="watchdog",
        daemon=True,
    )
    dog.start()
    try:
        yield
    finally:
        stop.set()
        dog.join(60)


def _kill_pg_primary(h: Harness, run: int) -> None:
    """The PostgreSQL leader's node is lost: its Patroni agent and its postmaster, SIGKILL, neither restarted."""
    (leader,) = [m for m in _pg_members(h) if _pg_role(h, m) == "leader"]
    postmaster = leader.postmaster_pid()
    os.kill(leader.process.pid() or 0, signal.SIGKILL)
    if postmaster:
        os.kill(postmaster, signal.SIGKILL)
    h.lost_member = leader


def _pg_members(h: Harness) -> list[PatroniMember]:
    return [m for m in patroni.members(h.settings) if isinstance(m, PatroniMember)]


def _pg_role(h: Harness, member: PatroniMember) -> str:
    return next((r["role"] for r in patroni.cluster(h.settings) if r["name"] == member.member_name), "-")


def _rejoin_pg_member(h: Harness) -> float:
    """The lost node comes back (its agent started again): seconds until it is a standby in sync (pg_rewind)."""
    began = time.monotonic()
    if h.lost_member is not None:
        h.lost_member.start()
        h.lost_member = None
    faults.wait_until(lambda: patroni.in_sync(h.settings), 180, "the old primary rejoining as a standby in sync", 0.5)
    return round(time.monotonic() - began, 2)


@contextlib.contextmanager
def _pg_pair(h: Harness) -> Iterator[None]:
    """PostgreSQL with replicas (`up --postgres-replicas 1`), every member in sync before the first run."""
    if len(_pg_members(h)) < 2:
        raise RuntimeError(
            "pg-primary-kill needs PostgreSQL replicas: run `shopstream down`, then `shopstream up "
            "--postgres-replicas 1`, then the scenario"
        )
    faults.wait_until(lambda: patroni.in_sync(h.settings), 120, "every PostgreSQL member in sync", 0.5)
    try:
        yield
    finally:
        if h.lost_member is not None:  # the harness failed before the rejoin: the node comes back anyway
            h.lost_member.start()


@contextlib.contextmanager
def _pg_through_partition(h: Harness) -> Iterator[None]:
    with faults.Proxy(h.settings.host, h.settings.postgres_port) as proxy:
        h.partition = faults.Partition(proxy.port)
        h.job_settings = h.settings.model_copy(update={"postgres_port": proxy.port})
        try:
            yield
        finally:
            h.partition.heal()


@contextlib.contextmanager
def _kafka_through_partition(h: Harness) -> Iterator[None]:
    """The job alone talks to the broker's second listener (SASL_SSL), whose port it advertises too: cutting
    that port cuts the job, and only the job, from Kafka (the producer and the harness stay on the first)."""
    h.partition = faults.Partition(h.settings.kafka_secure_port)
    h.job_settings = over_sasl_ssl(h.settings)
    try:
        yield
    finally:
        h.partition.heal()


@contextlib.contextmanager
def _database_on_small_disk(h: Harness) -> Iterator[None]:
    """The job's database of its own, whose tablespace is a small tmpfs: filling it fails the sink's writes with
    DiskFull (SQLSTATE 53100), as PostgreSQL's data disk running full does. The WAL stays on the main disk, so
    the server itself keeps running (a full WAL disk is a PANIC, which the watchdog restarts)."""
    name = h.settings.topic_prefix.replace("-", "_")
    with faults.SmallDisk(h.folder / "small-disk", size_mb=1024) as disk:
        h.disk = disk
        location = faults.tablespace_dir(h.settings, disk.path)
        faults.admin_sql(h.settings, f"CREATE TABLESPACE {name} LOCATION '{location}'")
        try:
            create_database(h.settings, name)
            faults.admin_sql(h.settings, f"ALTER DATABASE {name} SET TABLESPACE {name}")
            h.settings = h.settings.model_copy(update={"postgres_db": name})
            migrate(h.settings)
            load_dimensions(h.settings, ProduceOptions(count=h.options.events))
            h.job_settings = h.settings
            yield
        finally:
            drop_database(h.settings, name)
            faults.admin_sql(h.settings, f"DROP TABLESPACE IF EXISTS {name}")


@contextlib.contextmanager
def _kafka_on_small_disk(h: Harness) -> Iterator[None]:
    """The broker's log folder on a small tmpfs for the scenario, with the watchdog: a full log folder makes
    the broker halt (its one log folder, the metadata log's too, has failed), and the watchdog starts it again,
    which succeeds once there is space. Afterwards the folder, with what it took in, goes back to the disk."""
    kafka = Kafka(h.settings)
    data = kafka.home / "data"
    saved, after = data.with_name("data.before-chaos"), data.with_name("data.after-chaos")
    kafka.stop()
    data.rename(saved)
    used_mb = sum(f.stat().st_size for f in saved.rglob("*") if f.is_file()) >> 20
    restored = False
    try:
        with faults.SmallDisk(data, size_mb=used_mb + 512) as disk:
            subprocess.run(["cp", "-a", f"{saved}/.", str(data)], check=True)
            kafka.start()
            h.disk = disk
            try:
                with _watchdog(h):
                    yield
            finally:
                disk.free()
                kafka.stop()
                subprocess.run(["cp", "-a", str(data), str(after)], check=True)
        data.rmdir()  # the mount point, empty again once unmounted
        after.rename(data)
        shutil.rmtree(saved)
        restored = True
    finally:
        if not restored:  # something failed on the way: the folder as it was before the scenario
            for partial in (data, after):
                shutil.rmtree(partial, ignore_errors=True)
            saved.rename(data)
        kafka.start()


@contextlib.contextmanager
def _checkpoint_on_small_disk(h: Harness) -> Iterator[None]:
    with faults.SmallDisk(h.folder / "small-disk") as disk:
        h.disk = disk
        h.checkpoint = disk.path / "checkpoint"
        yield


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("job-sigkill", "worker failure", _kill_job, "failure"),
        Scenario("jvm-kill", "worker failure", _kill_jvm, "failure"),
        Scenario("standby-job-sigkill", "worker failure", _kill_job, "takeover", standby=True),
        Scenario("standby-jvm-kill", "worker failure", _kill_jvm, "takeover", standby=True),
        Scenario("standby-hang", "worker failure", _hang_driver, "takeover", standby=True),
        Scenario(
            "pg-stop-10s",
            "database connection loss",
            lambda h, r: faults.postgres_immediate_stop(h.settings),
            "retry",
            hold_s=10,
            clear=lambda h: faults.postgres_start(h.settings),
        ),
        Scenario(
            "pg-stop-60s",
            "database connection loss",
            lambda h, r: faults.postgres_immediate_stop(h.settings),
            "retry",
            hold_s=60,
            clear=lambda h: faults.postgres_start(h.settings),
        ),
        Scenario(
            "pg-primary-kill",
            "database primary lost",
            _kill_pg_primary,
            "retry",
            setup=_pg_pair,
            target_s=(None, 40),
            after_recovery=_rejoin_pg_member,
        ),
        Scenario(
            "pg-connection-kill",
            "database connection loss",
            lambda h, r: faults.terminate_writer_sessions(h.settings),
            "retry",
        ),
        Scenario("broker-kill", "worker failure", _kill_service(Kafka), "watchdog:kafka", setup=_watchdog),
        Scenario("registry-kill", "worker failure", _kill_service(Registry), "watchdog:registry", setup=_watchdog),
        Scenario(
            "checkpoint-disk-full",
            "file system full",
            lambda h, r: h.disk.fill(),
            "failure",
            hold_s=30,
            clear=lambda h: h.disk.free(),
            setup=_checkpoint_on_small_disk,
        ),
        Scenario(
            "database-disk-full",
            "file system full",
            lambda h, r: h.disk.fill(),
            "retry",
            hold_s=30,
            clear=lambda h: h.disk.free(),
            setup=_database_on_small_disk,
        ),
        Scenario(
            "kafka-disk-full",
            "file system full",
            lambda h, r: h.disk.fill(),
            "watchdog:kafka",
            hold_s=30,
            clear=lambda h: h.disk.free(),
            setup=_kafka_on_small_disk,
        ),
        Scenario(
            "pg-partition-30s",
            "network partition",
            lambda h, r: h.partition.cut(),
            "retry",
            hold_s=30,
            clear=lambda h: h.partition.heal(),
            setup=_pg_through_partition,
        ),
        Scenario(
            "kafka-partition-30s",
            "network partition",
            lambda h, r: h.partition.cut(),
            "stall",
            hold_s=30,
            clear=lambda h: h.partition.heal(),
            setup=_kafka_through_partition,
        ),
        Scenario(
            "producer-sigkill",
            "worker failure",
            lambda h, r: h.producing.kill(),
            "none",
            hold_s=5,
            clear=lambda h: h.producing.resume(),
            producer_process=True,
        ),
    )
}


# The harness ----------------------------------------------------------------------------------
@dataclass
class Harness:
    settings: Settings
    options: ChaosOptions
    scenario: Scenario
    folder: object = None
    job_settings: Settings | None = None
    checkpoint: object = None
    stream: StreamProcess | None = None
    partition: faults.Partition | None = None
    disk: faults.SmallDisk | None = None
    producing: Producing | ProducerProcess | None = None
    lost_member: PatroniMember | None = None
    results: list[RunResult] = field(default_factory=list)

    def lag(self, probe: OffsetProbe, topics: list[str], key: str) -> int | None:
        try:
            ends = probe.log_end_offsets(topics, timeout=2)
            with contextlib.closing(connect(self.settings, "reader")) as conn, conn.cursor() as cur:
                committed = ledger.committed_offsets(cur, key)
        except Exception:  # noqa: BLE001 - PostgreSQL or Kafka may be the fault: no reading this time
            return None
        return sum(
            max(end - committed.get(t, {}).get(p, 0), 0) for t, parts in ends.items() for p, end in parts.items()
        )

    def job(self) -> dict[str, float]:
        """The job's own /metrics; with a standby, both drivers' ports, each sample's largest value (the driver
        that took over serves the standby's port until the job's is free)."""
        signals = job_metrics(self.settings)
        if self.scenario.standby:
            for name, value in job_metrics(self.settings, self.settings.stream_standby_metrics_port).items():
                signals[name] = max(signals.get(name, value), value)
        return signals

    def standby_ready(self) -> bool:
        return bool(
            job_metrics(self.settings, self.settings.stream_standby_metrics_port).get("shopstream_stream_standby_ready")
        )

    def detected_at(self, signals: dict[str, float]) -> float | None:
        kind = self.scenario.signal
        if kind == "takeover":
            return signals.get("shopstream_stream_lease_acquired_timestamp_seconds") or None
        if kind == "retry":
            return signals.get("shopstream_sink_retry_started_timestamp_seconds") or None
        if kind == "failure":
            return signals.get("shopstream_stream_last_failure_timestamp_seconds") or None
        if kind == "stall":
            return signals.get("shopstream_stream_stalled_since_timestamp_seconds") or None
        record = watchdog.restarts(self.settings).get(kind.split(":", 1)[1])
        return record.detected_at if record else None


def handled_by(before: dict[str, float], after: dict[str, float], service_restarts: int) -> str:
    ways = []
    if after.get("shopstream_stream_takeovers_total", 0) > before.get("shopstream_stream_takeovers_total", 0):
        return "the standby driver took over"
    process = sum(v for k, v in after.items() if k.startswith("restarts:") and k != "restarts:query_failed")
    if process > sum(v for k, v in before.items() if k.startswith("restarts:") and k != "restarts:query_failed"):
        ways.append("process restarted by its supervisor")
    elif after.get("restarts:query_failed", 0) > before.get("restarts:query_failed", 0):
        ways.append("query restarted in the driver")
    retries = "shopstream_sink_retries_total"
    if after.get(retries, 0) > (0 if process else before.get(retries, 0)) and not ways:
        ways.append("sink retried the batch")
    if service_restarts:
        ways.append("service restarted by the watchdog")
    return " + ".join(ways) or "rode it out (its clients reconnected)"


def one_run(h: Harness, run: int, topics: list[str], probe: OffsetProbe, on_step: Callable[[str], None]) -> RunResult:
    s, o = h.settings, h.options
    key = h.stream.pipeline_key()
    start = probe.log_end_offsets(topics)
    produce = ProduceOptions(
        rate=o.rate, count=o.events, run_id=f"{h.scenario.name}-{run}-{uuid.uuid4().hex[:6]}", seed=run + 1
    )
    quiet = s.model_copy(update={"producer_metrics_port": 0})
    producing = (
        ProducerProcess(quiet, produce, h.folder / f"manifest-{run + 1}.json")
        if h.scenario.producer_process
        else Producing(quiet, produce)
    )
    h.producing = producing
    if h.scenario.standby:  # a standby that is still warming up would take over cold: not what is measured
        on_step(f"run {run + 1}: waiting for a warm standby")
        faults.wait_until(h.standby_ready, 240, "a warm standby driver", 1.0)
    began = time.monotonic()
    producing.start()
    fault_after = random.uniform(0.3, 0.6) * o.events / o.rate
    time.sleep(max(0.0, fault_after - 3 - (time.monotonic() - began)))
    pre_lag = 0
    while time.monotonic() - began < fault_after:
        pre_lag = max(pre_lag, h.lag(probe, topics, key) or 0)
        time.sleep(0.25)
    before = h.job()
    restarts_before = sum(r.restarts for r in watchdog.restarts(s).values())
    on_step(f"run {run + 1}: fault at {fault_after:.0f} s (lag before: {pre_lag:,})")
    t_fault = time.time()
    h.scenario.inject(h, run)
    # The platform's own timestamp of seeing the fault (Unix time). A killed producer is the user's process,
    # which the platform does not watch: nothing to detect, and recovery is timed from its rerun.
    detected: float | None = t_fault if h.scenario.signal == "none" else None

    def poll_detection() -> None:
        nonlocal detected
        if detected is None:
            at = h.detected_at(h.job())
            if at is not None and at >= t_fault - 0.5:
                detected = at

    while time.time() - t_fault < h.scenario.hold_s:
        poll_detection()
        time.sleep(0.25)
    h.scenario.clear(h)
    t_clear = time.time()
    recovered: float | None = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and (recovered is None or detected is None):
        poll_detection()
        # Recovered: a commit after the fault was cleared AND after the platform saw it (a batch already inside
        # its transaction when a JVM dies may still commit: that is not recovery), with lag back down.
        if recovered is None and detected is not None:
            job = h.job()
            lag = h.lag(probe, topics, key)
            if (
                job.get("shopstream_sink_last_commit_timestamp_seconds", 0) > max(t_clear, detected)
                and lag is not None
                and lag <= pre_lag
            ):
                recovered = time.time() - t_clear
        time.sleep(0.25)
    after = h.job()
    rejoin = h.scenario.after_recovery(h)
    after_back = None
    if recovered is not None and h.scenario.signal.startswith("watchdog:"):
        record = watchdog.restarts(s).get(h.scenario.signal.split(":", 1)[1])
        if record and record.last_restart and record.last_restart >= t_fault:
            after_back = round(max(t_clear + recovered - record.last_restart, 0.0), 2)
    producing.join()
    manifest = producing.result.manifest
    end = probe.log_end_offsets(topics)
    on_step(f"run {run + 1}: draining")
    run_ = PipelineRun(s, h.stream)
    run_.start, run_.end = start, end  # taken through the probe, which rides out the faults
    run_.drain()
    summary = run_.summary(manifest.unique_events)
    restarts_after = sum(r.restarts for r in watchdog.restarts(s).values())
    if h.scenario.producer_process:
        how = "its rerun (`produce --resume`) sent only what Kafka lacked"
    elif h.scenario.signal == "takeover" and detected is not None:  # counters are per process: a new one has 0
        how = "the standby driver took over"
    else:
        how = handled_by(before, after, restarts_after - restarts_before)
    matches = summary.quality == manifest.to_dict()["quality"] and summary.produced == manifest.produced
    return RunResult(
        h.scenario.name,
        run + 1,
        summary.produced,
        manifest.unique_events,
        summary.lost,
        summary.duplicates_in_db,
        matches,
        None if detected is None or h.scenario.signal == "none" else round(max(detected - t_fault, 0.0), 2),
        None if recovered is None else round(recovered, 2),
        how,
        after_back,
        rejoin,
    )


def run_scenario(
    settings: Settings, options: ChaosOptions, scenario: Scenario, on_step: Callable[[str], None] = lambda text: None
) -> Iterator[RunResult]:
    """Each run's result as soon as it is measured."""
    stamp = uuid.uuid4().hex[:6]
    h = Harness(settings, options, scenario, folder=settings.runtime_dir / "chaos" / f"{scenario.name}-{stamp}")
    h.folder.mkdir(parents=True, exist_ok=True)
    prefix = f"chaos-{scenario.name}-{stamp}"
    base = settings.model_copy(update={"topic_prefix": prefix})
    h.settings = base
    specs = load_topic_specs()
    ensure_topics(base, prefix, specs)
    grant_pipeline_access(base, prefix, pipeline=prefix)  # what the SASL_SSL listener's user may do with them
    topics = list(schemas.event_topics(base).values())
    try:
        with scenario.setup(h), OffsetProbe(base) as probe:
            job_settings = (h.job_settings or base).model_copy(update={"topic_prefix": prefix})
            h.stream = StreamProcess(
                job_settings,
                StreamOptions(
                    pipeline=prefix,
                    checkpoint_dir=h.checkpoint or h.folder / "checkpoint",
                    standby=scenario.standby,
                ),
            )
            on_step(f"{scenario.name}: starting the stream job")
            h.stream.start()
            try:
                for run in range(options.runs):
                    result = one_run(h, run, topics, probe, lambda t: on_step(f"{scenario.name} {t}"))
                    h.results.append(result)
                    yield result
            finally:
                h.stream.stop()
    finally:
        delete_topics(base, prefix, specs)
        revoke_pipeline_access(base, prefix, pipeline=prefix)
        shutil.rmtree(h.folder, ignore_errors=True)


def run_matrix(
    settings: Settings,
    options: ChaosOptions,
    on_step: Callable[[str], None] = lambda text: None,
    on_result: Callable[[RunResult], None] = lambda r: None,
) -> list[RunResult]:
    """Every scenario's runs; the stack's own watchdog is paused (the scenarios that need one run it)."""
    stack.up(settings)
    migrate(settings)
    load_dimensions(settings, ProduceOptions(count=options.events))
    paused = stack.watchdog_process(settings).stop()
    results: list[RunResult] = []
    try:
        for name in options.scenarios:
            try:
                for result in run_scenario(settings, options, SCENARIOS[name], on_step):
                    results.append(result)
                    on_result(result)
            except Exception as exc:
                log.exception("scenario %s failed: %s", name, exc)
                failed = RunResult(name, 0, 0, 0, -1, -1, False, None, None, f"the harness failed: {exc}")
                results.append(failed)
                on_result(failed)
    finally:
        if paused:
            stack.start_watchdog(settings)
    return results


# The table ------------------------------------------------------------------------------------
def spread(values: list[float | None]) -> dict | None:
    seen = [v for v in values if v is not None]
    if not seen:
        return None
    return {
        "min": min(seen),
        "median": round(statistics.median(seen), 2),
        "max": max(seen),
        "missing": len(values) - len(seen),
    }


def table(results: list[RunResult]) -> list[dict]:
    rows = []
    for name in dict.fromkeys(r.scenario for r in results):
        runs = [r for r in results if r.scenario == name]
        scenario = SCENARIOS[name]
        seed = SEED[scenario.seed_row]
        target = scenario.target_s or ((seed[0] / 2, seed[1] / 2) if seed else None)
        rows.append(
            {
                "scenario": name,
                "seed_row": SCENARIOS[name].seed_row,
                "runs": len(runs),
                "events_per_run": min(r.produced for r in runs),
                "detection_s": spread([r.detection_s for r in runs]),
                "recovery_s": spread([r.recovery_s for r in runs]),
                "after_back_s": spread([r.after_back_s for r in runs])
                if any(r.after_back_s is not None for r in runs)
                else None,
                "rejoin_s": spread([r.rejoin_s for r in runs]) if any(r.rejoin_s is not None for r in runs) else None,
                "target_s": list(target) if target else None,
                "seed_s": list(seed) if seed else None,
                "lost": sum(r.lost for r in runs),
                "duplicates": sum(r.duplicates for r in runs),
                "quality_matches_manifest": all(r.quality_matches_manifest for r in runs),
                "detected_by": SCENARIOS[name].signal,
                "handled_by": sorted({r.handled_by for r in runs}),
            }
        )
    return rows


def as_dicts(results: list[RunResult]) -> list[dict]:
    return [asdict(r) for r in results]
