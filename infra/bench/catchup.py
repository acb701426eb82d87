"""`shopstream bench catchup`: how fast each system drains a backlog into PostgreSQL.

What a user waits for after an outage or a replay. For each system, on fresh topics and a
fresh database: the producer first writes ``events`` valid events as fast as it can, with
no consumer running; then the consumer starts and the clock runs until the ledger holds
every offset. The start-up (JVM, warm-up) is reported apart from the drain itself.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass

from core.settings import Settings
from infra.bench.e2e import _consumer
from infra.bench.peers import traits_table
from infra.bench.resources import ResourceSampler
from infra.orchestration.harness import PipelineRun, sandbox
from infra.runtime.process import ManagedProcess
from producers.options import NO_FAULTS, ProduceOptions


@dataclass
class CatchupResult:
    system: str
    events: int
    preload_s: float  # the producer writing the backlog, no consumer running
    start_s: float  # the consumer's start until it reports ready (JVM, warm-up)
    drain_s: float  # ready until the ledger holds every offset
    events_per_second: float  # events / drain_s
    total_s: float  # start_s + drain_s: what a user waits for
    resources: dict
    stored: int
    lost: int
    duplicates_in_db: int


def run_system(settings: Settings, system: str, events: int, job_warmup: bool = True) -> CatchupResult:
    with sandbox(settings, warmup=job_warmup) as box:
        cfg, options = box.settings, box.options
        consumer = _consumer(system, cfg, options)
        run = PipelineRun(cfg, consumer)
        began = time.monotonic()
        produced = run.produce(
            ProduceOptions(
                rate=0, count=events, late_ratio=0, duplicate_ratio=0, faults=NO_FAULTS, run_id=cfg.topic_prefix
            )
        )
        preload_s = time.monotonic() - began
        started = time.monotonic()
        try:
            consumer.start(timeout=300)
            ready = time.monotonic()
            pids = {
                f"consumer ({system})": consumer.proc.pid,
                **{s: ManagedProcess(s, cfg.runtime_dir).pid() for s in ("kafka", "postgres")},
            }
            sampler = ResourceSampler(pids)
            sampler.start()
            drain_s = run.drain()
            resources = sampler.stop()
        finally:
            consumer.stop()
        summary = run.summary(produced.manifest.unique_events)
    return CatchupResult(
        system=system,
        events=summary.produced,
        preload_s=round(preload_s, 1),
        start_s=round(ready - started, 1),
        drain_s=round(drain_s, 1),
        events_per_second=round(summary.produced / max(drain_s, 1e-9)),
        total_s=round(ready - started + drain_s, 1),
        resources=resources,
        stored=summary.stored,
        lost=summary.lost,
        duplicates_in_db=summary.duplicates_in_db,
    )


def markdown(results: list[CatchupResult], command: str) -> str:
    machine = f"{os.cpu_count()} cores, everything on one machine"
    out = [
        f"# Catch-up: draining a backlog into PostgreSQL\n\nMachine: {machine}  \nCommand: `{command}`  \n"
        "Method: per system, fresh topics and database; the backlog is produced first (valid events, no consumer "
        "running), then the consumer starts; the drain runs from its reported readiness until the ledger holds "
        "every offset. CPU is % of one core during the drain.\n",
        "## What each system guarantees and does\n",
        *traits_table([r.system for r in results]),
        "",
        "## Drain\n",
        "| System | Events | Start-up | Drain | Drain rate | Total wait | Consumer CPU % | Kafka CPU % | "
        "PostgreSQL CPU % | Lost | Duplicates |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cpu = {name.split(" ")[0]: v["cpu_percent"] for name, v in r.resources.items()}
        out.append(
            f"| {r.system} | {r.events:,} | {r.start_s} s | {r.drain_s} s | {r.events_per_second:,.0f}/s | "
            f"{r.total_s} s | {cpu.get('consumer', '-')} | {cpu.get('kafka', '-')} | "
            f"{cpu.get('postgres', '-')} | {r.lost} | {r.duplicates_in_db} |"
        )
    return "\n".join(out) + "\n"


def to_json(results: list[CatchupResult], command: str) -> str:
    return json.dumps({"command": command, "results": [asdict(r) for r in results]}, indent=2)
