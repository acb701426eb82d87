"""`shopstream bench e2e`: the seed's "System Throughput Under Load" table, measured.

For each system and load level: fresh topics and a fresh database, the consumer
(ours: the Spark job; `plain`: a confluent-kafka + fastavro + COPY consumer; `quix`:
Quix Streams with its PostgreSQL sink), the
producer at the level's rate for the duration, then a drain until the ledger holds
every produced offset. Figures come from the run summary (Kafka offsets, ledger, SQL)
and /proc. Events are valid (no injected faults), so the peer without validation
can take the same input; ours still runs every rule on every record.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import producers
import schemas
from core.settings import Settings
from infra.bench.peers import traits_table
from infra.bench.resources import ResourceSampler
from infra.orchestration.harness import PipelineRun, sandbox
from infra.orchestration.processes import StreamProcess
from infra.runtime import stack
from infra.runtime.process import ManagedProcess
from infra.runtime.services.kafka import nodes as kafka_nodes
from infra.runtime.stack import spark_cluster
from monitoring.summary import RunScope, RunSummary
from producers.options import NO_FAULTS, FaultRatios, ProduceOptions
from producers.producer import ProduceResult
from streaming.options import StreamOptions

#: The stream job's own default trigger (StreamOptions), unless a run asks for another.
TRIGGER_S: float = StreamOptions.model_fields["trigger_s"].default

log = logging.getLogger(__name__)
SYSTEMS = ("shopstream", "plain", "quix", "flink", "connect")
SUSTAINABLE_DRAIN_S = 5.0  # lag is bounded if the consumer catches up within ~2 batch cycles of the producer stopping
SUSTAINABLE_RATE_SHARE = 0.95
COLD_START_S = 30.0  # the cold-start column: events appended in the first 30 s after the consumer is ready


class PlainConsumerProcess(StreamProcess):
    """The plain peer as a child process (`shopstream bench peer-plain`)."""

    def __init__(self, settings: Settings, options: StreamOptions):
        super().__init__(settings, options)
        self.key = f"plain:{uuid.uuid4().hex[:8]}"
        self.log_file = settings.runtime_dir / "logs" / "bench-plain.log"

    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "infra",
            "bench",
            "peer-plain",
            "--pipeline",
            self.key,
            "--ready-file",
            str(self.ready_file),
        ]

    def pipeline_key(self) -> str:
        return self.key


def _consumer(system: str, cfg: Settings, options: StreamOptions) -> StreamProcess:
    if system == "shopstream":
        return StreamProcess(cfg.model_copy(update={"stream_metrics_port": 0}), options)
    if system == "plain":
        return PlainConsumerProcess(cfg, options)
    if system == "flink":
        from infra.bench.peers.flink.process import FlinkProcess

        return FlinkProcess(cfg, options)
    if system == "connect":
        from infra.bench.peers.connect.process import ConnectProcess

        return ConnectProcess(cfg, options)
    from infra.bench.peers.quix.process import QuixProcess

    return QuixProcess(cfg, options, schemas.event_topics(cfg))


@dataclass
class LevelResult:
    system: str
    target_rate: float
    input_rate: float
    output_rate: float
    success_rate: float
    drain_s: float
    sustainable: bool
    e2e_ms: dict
    stages_ms: dict
    resources: dict
    produced: int
    lost: int
    duplicates_in_db: int
    spark_cores: int | None = None
    partitions: int | None = None
    scaling: bool = False  # a scaling variant, kept out of the main table
    brokers: int = 1  # Kafka nodes (3: the event topics replicated 3 times, 2 in sync)
    workers: int = 0  # Spark standalone workers sharing spark_cores (0: local mode)
    cold_start_ms: dict | None = None  # e2e of the events appended in the first COLD_START_S, warm-up included


@dataclass
class Measured:
    """What one level's run left: the producer's result, the measured window and the drain."""

    produced: ProduceResult
    window_start: dict
    window_at: float
    produced_done: float
    drain_s: float
    resources: dict
    summary: RunSummary
    scope: RunScope
    cold_summary: RunSummary


def measure(
    cfg: Settings,
    consumer: StreamProcess,
    system: str,
    rate: float,
    duration_s: float,
    warmup_s: float,
    late_threshold_s: float,
    services: dict[str, int | None],
    faults: FaultRatios = NO_FAULTS,
) -> Measured:
    """Produce ``warmup_s + duration_s`` without a pause; count only what was appended after
    the warm-up, and sample resources from then on (the consumer, the producer, and ``services``: each a root
    process with its children); wait for the consumer to drain."""
    pids = {f"consumer ({system})": consumer.proc.pid, "producer": os.getpid(), **services}
    sampler = ResourceSampler(pids, alone=("producer",))
    run = PipelineRun(cfg, consumer, late_threshold_s)  # the measured window
    cold = PipelineRun(cfg, consumer, late_threshold_s)  # the consumer is ready: its first COLD_START_S follow
    cold.mark_start()
    window_at: list[float] = []

    def measure_from_now() -> None:
        run.mark_start()
        window_at.append(time.monotonic())
        sampler.start()

    timer = threading.Timer(warmup_s, measure_from_now)
    cold_timer = threading.Timer(COLD_START_S, cold.mark_end)
    try:
        cold_timer.start()
        measure_from_now() if not warmup_s else timer.start()
        result = producers.run(
            cfg,
            ProduceOptions(
                rate=rate,
                duration_s=warmup_s + duration_s,
                late_ratio=0,
                duplicate_ratio=0,
                faults=faults,
                run_id=cfg.topic_prefix,
            ),
        )
        if result.stopped_early:  # a signal reached the producer: end the benchmark, not just this level
            raise KeyboardInterrupt
        timer.join()
        end = run.mark_end()
        cold_timer.cancel()  # a run shorter than COLD_START_S: its whole is the cold start
        if cold.end is None:
            cold.end = end
        drain = run.drain()
    finally:
        timer.cancel()
        cold_timer.cancel()
    produced_done = time.monotonic() - drain
    resources = sampler.stop()
    # Valid events only, no duplicates: every event in the window is a unique one.
    return Measured(
        result, run.scope.start, window_at[0], produced_done, drain, resources, run.summary(), run.scope, cold.summary()
    )


@contextlib.contextmanager
def kafka_of(settings: Settings, brokers: int) -> Iterator[tuple[Settings, dict[str, int | None]]]:
    """Settings for a Kafka of ``brokers`` nodes, and its nodes' pids: the local one, or (more than one) a cluster
    started for the level in a runtime folder of its own (Kafka ports + 10000) and stopped after it."""
    if brokers == 1:
        yield settings, {"kafka": ManagedProcess("kafka", settings.runtime_dir).pid()}
        return
    runtime_dir = settings.runtime_dir / "bench" / f"kafka-{brokers}-nodes"
    runtime_dir.mkdir(parents=True, exist_ok=True)
    if not (runtime_dir / "jvm").exists():
        (runtime_dir / "jvm").symlink_to(settings.runtime_dir / "jvm")  # the same Kafka jars
    cfg = settings.model_copy(
        update={
            "runtime_dir": runtime_dir,
            "kafka_nodes": brokers,
            **{f: getattr(settings, f) + 10000 for f in ("kafka_port", "kafka_controller_port", "kafka_secure_port")},
        }
    )
    started = stack.up(cfg, only=["kafka"])
    try:
        yield cfg, {k.name: k.process.pid() for k in kafka_nodes(cfg)}
    finally:
        if started:
            stack.down_services(cfg, ["kafka"])


@contextlib.contextmanager
def spark_of(settings: Settings, cores: int, workers: int) -> Iterator[tuple[str, dict[str, int | None]]]:
    """The master URL for ``cores`` Spark cores, and the workers' pids (their executors are their children):
    local mode, or (``workers``) a standalone cluster whose workers share the cores, started for the level."""
    if not workers:
        yield f"local[{cores}]", {}
        return
    cfg = settings.model_copy(update={"spark_worker_cores": max(1, cores // workers)})
    daemons = spark_cluster(cfg, workers)
    started = []
    try:
        for daemon in daemons:
            if daemon.start():
                started.append(daemon)
        yield cfg.spark_master_url, {d.name: d.process.pid() for d in daemons[1:]}
    finally:
        for daemon in reversed(started):
            daemon.stop()


def run_level(
    settings: Settings,
    system: str,
    rate: float,
    duration_s: float,
    spark_cores: int = 2,
    partitions: int | None = None,
    warmup_s: float = 0.0,
    brokers: int = 1,
    workers: int = 0,
    trigger_s: float = TRIGGER_S,
    job_warmup: bool = True,
    faults: FaultRatios = NO_FAULTS,
) -> LevelResult:
    """One system at one rate, in a sandbox of its own (see ``measure`` for the window), on a Kafka of
    ``brokers`` nodes and in local mode or on a standalone cluster of ``workers``."""
    services = {name: ManagedProcess(name, settings.runtime_dir).pid() for name in ("registry", "postgres")}
    with (
        kafka_of(settings, brokers) as (kafka_cfg, kafka_pids),
        spark_of(settings, spark_cores, workers) as (master, worker_pids),
        sandbox(kafka_cfg, partitions=partitions, trigger_s=trigger_s, warmup=job_warmup) as box,
    ):
        cfg, options = box.settings, box.options.model_copy(update={"master": master})
        consumer = _consumer(system, cfg, options)
        try:
            consumer.start()
            m = measure(
                cfg,
                consumer,
                system,
                rate,
                duration_s,
                warmup_s,
                options.late_threshold_s,
                {**kafka_pids, **services, **worker_pids},
                faults,
            )
        finally:
            consumer.stop()
    achieved = m.produced.events_per_second
    summary = m.summary
    done = summary.stored + summary.quarantined
    return LevelResult(
        system=system,
        target_rate=rate,
        input_rate=round(achieved, 1),
        output_rate=round(done / (m.produced_done - m.window_at + m.drain_s), 1),
        success_rate=round(done / max(m.scope.produced, 1), 4),
        drain_s=round(m.drain_s, 1),
        sustainable=m.drain_s <= SUSTAINABLE_DRAIN_S and achieved >= SUSTAINABLE_RATE_SHARE * rate,
        e2e_ms=summary.e2e_latency_ms,
        stages_ms=summary.stages_ms,
        resources=m.resources,
        produced=summary.produced,
        lost=summary.lost,
        duplicates_in_db=summary.duplicates_in_db,
        spark_cores=spark_cores if system == "shopstream" else None,
        partitions=partitions,
        brokers=brokers,
        workers=workers,
        cold_start_ms=m.cold_summary.e2e_latency_ms,
    )


@dataclass
class BenchReport:
    machine: str
    command: str
    method: str = ""
    levels: list[LevelResult] = field(default_factory=list)
    max_sustainable: dict = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(
            {
                "machine": self.machine,
                "command": self.command,
                "method": self.method,
                "max_sustainable": self.max_sustainable,
                "failures": self.failures,
                "levels": [lv.__dict__ for lv in self.levels],
            },
            indent=2,
            default=str,
        )

    def markdown(self) -> str:
        out = [
            f"# shopstream benchmark\n\nMachine: {self.machine}  \nCommand: `{self.command}`  \n"
            f"Method: {self.method}\n",
            "## What each system guarantees and does\n",
            *traits_table([lv.system for lv in self.levels]),
            "",
            "## System throughput under load\n",
            f"The cold-start p95 covers the events appended in the first {COLD_START_S:g} s after the consumer "
            f"was ready (warm-up window included): what a user sees after `make run` or a restart.\n",
            "| System | Load level (ev/s) | Input rate | Output rate | Success rate | Avg latency | p95 | p99 | "
            "Cold-start p95 | Drain after stop | Sustainable |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for lv in self.levels:
            if lv.scaling:
                continue
            out.append(
                f"| {lv.system} | {lv.target_rate:,.0f} | {lv.input_rate:,.0f}/s | {lv.output_rate:,.0f}/s | "
                f"{lv.success_rate:.2%} | {lv.stages_ms.get('end_to_end', {}).get('avg', 0) / 1000:.2f}s | "
                f"{lv.e2e_ms['p95'] / 1000:.2f}s | {lv.e2e_ms['p99'] / 1000:.2f}s | {_cold(lv)} | "
                f"{lv.drain_s}s | "
                f"{'yes' if lv.sustainable else 'no'} |"
            )
        out += [
            "",
            "## Maximum sustainable rate (lag bounded, nothing lost)\n",
            "| System | Rate (ev/s) | p95 at that rate |",
            "|---|---|---|",
        ]
        for system, (rate, p95) in self.max_sustainable.items():
            out.append(
                f"| {system} | {rate:,.0f} | {p95 / 1000:.2f}s |"
                if rate
                else f"| {system} | below the lowest level | - |"
            )
        out += self._ratios()
        scaling = [lv for lv in self.levels if lv.scaling]
        if scaling:
            out += [
                "",
                "## Scaling (in the spirit of the seed's workers table)\n",
                "Job CPU: the driver and (on a cluster) its executors; Kafka CPU: every node. Both in % of one core.\n",
                "| Variant | Load level | Output rate | p95 | Drain | Job CPU % | Kafka CPU % | Sustainable |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for lv in scaling:
                job = _cpu(lv, "consumer", "spark-worker")
                kafka = _cpu(lv, "kafka")
                out.append(
                    f"| {_variant(lv)[2:-1] or 'default'} | {lv.target_rate:,.0f} | {lv.output_rate:,.0f}/s | "
                    f"{lv.e2e_ms['p95'] / 1000:.2f}s | {lv.drain_s}s | {job} | {kafka} | "
                    f"{'yes' if lv.sustainable else 'no'} |"
                )
        out += [
            "",
            "## Latency breakdown per level (ms: avg / p95 / max)\n",
            "Kafka → commit is queue + process + db_write in one: the only split a stock sink (flink, connect) "
            "allows, since it writes no ledger of its batches.\n",
            "| System | Level | "
            + " | ".join(("generate", "produce", "queue", "process", "db_write", "Kafka → commit", "end_to_end"))
            + " |",
            "|---|---|" + "---|" * 7,
        ]
        for lv in self.levels:
            cells = [
                f"{v['avg']:.0f} / {v['p95']:.0f} / {v['max']:.0f}" if (v := lv.stages_ms.get(s)) else "-"
                for s in ("generate", "produce", "queue", "process", "db_write", "kafka_to_commit", "end_to_end")
            ]
            out.append(f"| {lv.system} | {lv.target_rate:,.0f}{_variant(lv)} | " + " | ".join(cells) + " |")
        out += [
            "",
            "## CPU and memory per component\n",
            "CPU per event: the component's CPU time from the measured window's start to the end of the drain "
            "÷ the events committed in that time (its CPU % ÷ the output rate).\n",
            "| System | Level | Component | CPU % (of one core) | CPU µs per event | Peak RSS MB |",
            "|---|---|---|---|---|---|",
        ]
        for lv in self.levels:
            for comp, r in lv.resources.items():
                per_event = f"{r['cpu_percent'] / 100 / lv.output_rate * 1e6:.0f}" if lv.output_rate else "-"
                out.append(
                    f"| {lv.system} | {lv.target_rate:,.0f}{_variant(lv)} | {comp} | {r['cpu_percent']} | "
                    f"{per_event} | {r['peak_rss_mb']} |"
                )
        if self.failures:
            out += ["", "## Levels that failed\n", *(f"- {f}" for f in self.failures)]
        return "\n".join(out) + "\n"

    def _ratios(self) -> list[str]:
        """shopstream against each peer: max sustainable rates, and p95 at the levels both sustain."""
        ours = self.max_sustainable.get("shopstream")
        peers = [p for p in self.max_sustainable if p != "shopstream"]
        if not ours or not peers:
            return []
        main = {(lv.system, lv.target_rate): lv for lv in self.levels if not lv.scaling}
        out = [
            "",
            "## shopstream relative to each peer\n",
            "| Peer | Peer's max sustainable | shopstream's max ÷ peer's | p95, shopstream ÷ peer, where both sustain |",
            "|---|---|---|---|",
        ]
        for peer in peers:
            rate = self.max_sustainable[peer][0]
            both = [
                (r, main[("shopstream", r)], lv)
                for (system, r), lv in sorted(main.items(), key=lambda kv: kv[0][1])
                if system == peer
                and lv.sustainable
                and ("shopstream", r) in main
                and main[("shopstream", r)].sustainable
            ]
            p95 = (
                "; ".join(
                    f"{r:,.0f}/s: {a.e2e_ms['p95'] / b.e2e_ms['p95']:.2f}×" for r, a, b in both if b.e2e_ms["p95"]
                )
                or "-"
            )
            out.append(
                f"| {peer} | {rate:,.0f}/s | {ours[0] / rate:.2f}× | {p95} |"
                if rate
                else f"| {peer} | below the lowest level | - | {p95} |"
            )
        return out


def _cold(lv: LevelResult) -> str:
    return f"{lv.cold_start_ms['p95'] / 1000:.2f}s" if lv.cold_start_ms else "-"


def _cpu(lv: LevelResult, *prefixes: str) -> str:
    """The CPU % of the components whose names start with one of ``prefixes``, summed ("-" if none was sampled)."""
    found = [r["cpu_percent"] for c, r in lv.resources.items() if c.startswith(prefixes)]
    return f"{sum(found):.1f}" if found else "-"


def _variant(lv: LevelResult) -> str:
    parts = []
    if lv.scaling and lv.spark_cores and not lv.partitions:
        parts.append(
            f"{lv.spark_cores} Spark core(s)"
            if not lv.workers
            else f"standalone cluster, {lv.workers} worker(s) × {max(1, lv.spark_cores // lv.workers)} core(s)"
        )
    if lv.partitions:
        parts.append(f"{lv.partitions} partition(s)")
    if lv.brokers > 1:
        parts.append(f"{lv.brokers} Kafka brokers, replication 3, min ISR 2")
    return f" ({', '.join(parts)})" if parts else ""


def load_report(path: Path) -> BenchReport:
    """A report back from its bench.json (to re-render the Markdown and chart)."""
    data = json.loads(path.read_text())
    report = BenchReport(
        data["machine"],
        data["command"],
        data.get("method", ""),
        max_sustainable={k: tuple(v) for k, v in data["max_sustainable"].items()},
        failures=data.get("failures", []),
    )
    report.levels = [LevelResult(**lv) for lv in data["levels"]]
    return report


def write_chart(report: BenchReport, path: Path) -> None:
    if not report.levels:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for system in dict.fromkeys(lv.system for lv in report.levels):
        levels = [lv for lv in report.levels if lv.system == system and not lv.scaling]
        left.plot([lv.target_rate for lv in levels], [lv.output_rate for lv in levels], marker="o", label=system)
        right.plot(
            [lv.target_rate for lv in levels], [lv.e2e_ms["p95"] / 1000 for lv in levels], marker="o", label=system
        )
    left.plot(
        [0, max(lv.target_rate for lv in report.levels)],
        [0, max(lv.target_rate for lv in report.levels)],
        ls=":",
        color="grey",
        label="offered",
    )
    left.set(title="Output rate by load level", xlabel="offered events/s", ylabel="events/s committed")
    right.set(title="End-to-end p95 by load level", xlabel="offered events/s", ylabel="seconds", yscale="log")
    for ax in (left, right):
        ax.legend()
    fig.suptitle(report.machine)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _attempt(
    settings,
    system,
    rate,
    duration_s,
    report,
    on_level,
    warmup_s=0.0,
    trigger_s=TRIGGER_S,
    job_warmup=True,
    faults=NO_FAULTS,
    **variant,
) -> LevelResult | None:
    """One level; a level that fails is logged and left out rather than ending the benchmark."""
    try:
        lv = run_level(
            settings,
            system,
            rate,
            duration_s,
            warmup_s=warmup_s,
            trigger_s=trigger_s,
            job_warmup=job_warmup,
            faults=faults,
            **variant,
        )
        lv.scaling = bool(variant)
    except Exception as exc:  # noqa: BLE001 - the report says which level failed and why
        log.error("%s at %s ev/s %s failed: %s", system, rate, variant or "", exc)
        report.failures.append(f"{system} at {rate:,.0f} ev/s {variant or ''}: {exc}")
        return None
    report.levels.append(lv)
    if on_level:
        on_level(lv)
    return lv


def run(
    settings: Settings,
    levels: list[float],
    duration_s: float,
    systems: list[str],
    search: bool,
    scaling: bool,
    command: str,
    on_level=None,
    warmup_s: float = 0.0,
    trigger_s: float = TRIGGER_S,
    job_warmup: bool = True,
    bad_data: bool = False,
) -> BenchReport:
    machine = (
        f"{os.cpu_count()} cores, {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB; "
        f"everything on one machine"
    )
    method = (
        f"each level: fresh topics and database, the consumer started, then the producer at the level's rate "
        f"for {warmup_s:g} s of warm-up (not measured) and {duration_s:g} s measured; figures cover the events "
        f"appended in the measured window; the stream job's trigger {trigger_s:g} s; "
        + (
            "the producer's default bad-data mix (every data-quality rule's faults): each system stores what it "
            "can, quarantined counts for those that validate, and what a system dropped counts as lost"
            if bad_data
            else "valid events only"
        )
    )
    report = BenchReport(machine, command, method=method)

    def attempt(system: str, rate: float, **variant) -> LevelResult | None:
        return _attempt(
            settings,
            system,
            rate,
            duration_s,
            report,
            on_level,
            warmup_s,
            trigger_s,
            job_warmup,
            FaultRatios() if bad_data else NO_FAULTS,
            **variant,
        )

    for system in systems:
        best = (0.0, 0.0)
        for rate in levels:
            lv = attempt(system, rate)
            if lv and lv.sustainable and lv.lost == 0:
                best = (rate, lv.e2e_ms["p95"])
        rate = max(levels)
        while search and best[0] == rate and rate < 50_000:
            rate += 5000
            lv = attempt(system, rate)
            if lv and lv.sustainable and lv.lost == 0:
                best = (rate, lv.e2e_ms["p95"])
        report.max_sustainable[system] = best
    if scaling:
        mid = levels[len(levels) // 2]
        for cores in (1, 2):
            attempt("shopstream", mid, spark_cores=cores)
        for partitions in (1, 2, 4):
            attempt("shopstream", mid, partitions=partitions)
        attempt("shopstream", mid, brokers=3)  # the cost of replication, against the 2-core variant
        for workers in (1, 2):  # the same 2 cores, as a standalone cluster
            attempt("shopstream", mid, workers=workers)
    return report
