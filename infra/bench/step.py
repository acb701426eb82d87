"""`shopstream bench step`: batch sizing under a step load (the seed's "batch size auto-tuning").

The producer steps its rate (by default 5,000 -> 20,000 -> 5,000 events/s, 60 s each) while the
stream job runs, once per configuration, each on fresh topics and a fresh database:

- ``adaptive``, the job's defaults: every trigger (0.5 s) reads whatever arrived since the last
  batch, up to ``maxOffsetsPerTrigger`` (200,000), and a batch that overruns its trigger is
  followed at once by the next, bigger one. Spark sizes each batch to the load by itself.
- ``fixed``: a batch size set for the first step's load, the way a batch system is configured
  once: ``maxOffsetsPerTrigger`` = first rate x trigger (2,500 by default).

Everything comes from the stored rows, timed from the run's first append (the producer's own
schedule): each step's events (appended within it) with their exact p95 and p99, and second by
second the events appended, committed, the lag between them and the p95 of each second's events.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from core.settings import Settings
from infra.bench.e2e import _consumer
from infra.bench.resources import ResourceSampler
from infra.orchestration.harness import PipelineRun, sandbox
from infra.runtime.process import ManagedProcess
from monitoring.summary import timeline
from producers.options import NO_FAULTS, ProduceOptions
from streaming.options import StreamOptions


def variant_options(variant: str, options: StreamOptions, steps: list[tuple[float, float]]) -> StreamOptions:
    if variant == "fixed":
        return options.model_copy(update={"max_offsets_per_trigger": max(1, int(steps[0][0] * options.trigger_s))})
    return options


def describe(options: StreamOptions) -> str:
    return f"trigger {options.trigger_s:g} s, maxOffsetsPerTrigger {options.max_offsets_per_trigger:,}"


@dataclass
class StepResult:
    variant: str
    configuration: str
    steps: list  # [[rate, seconds], …] offered
    per_step: list[dict]  # each step: offered rate, events, p95/p99 ms, the highest lag in it
    e2e_ms: dict  # the whole run
    drain_s: float  # after the producer stopped, until the ledger held every offset
    timeline: list[dict] = field(default_factory=list)  # per second: appended, committed, lag, p95_ms
    resources: dict = field(default_factory=dict)
    produced: int = 0
    lost: int = 0
    duplicates_in_db: int = 0


def run_variant(
    settings: Settings, variant: str, steps: list[tuple[float, float]], trigger_s: float, job_warmup: bool = True
) -> StepResult:
    with sandbox(settings, trigger_s=trigger_s, warmup=job_warmup) as box:
        cfg, options = box.settings, variant_options(variant, box.options, steps)
        consumer = _consumer("shopstream", cfg, options)
        run = PipelineRun(cfg, consumer)
        try:
            consumer.start()
            pids = {
                "consumer (shopstream)": consumer.proc.pid,
                "producer": os.getpid(),
                **{s: ManagedProcess(s, cfg.runtime_dir).pid() for s in ("kafka", "postgres")},
            }
            sampler = ResourceSampler(pids, alone=("producer",))
            run.mark_start()
            sampler.start()
            produced = run.produce(
                ProduceOptions(steps=steps, late_ratio=0, duplicate_ratio=0, faults=NO_FAULTS, run_id=cfg.topic_prefix)
            )
            if produced.stopped_early:
                raise KeyboardInterrupt
            drain_s = run.drain()
            resources = sampler.stop()
        finally:
            consumer.stop()
        whole = run.scope
        summary = run.summary()
        edges = [sum(seconds for _, seconds in steps[:i]) for i in range(len(steps) + 1)]
        seconds, windows = timeline(cfg, whole, options.late_threshold_s, edges[:-1])
        per_step = [
            {
                "rate": rate,
                "seconds": length,
                **window,
                "max_lag": max((s["lag"] for s in seconds if begin <= s["s"] < stop), default=0),
            }
            for (rate, length), window, begin, stop in zip(steps, windows, edges, edges[1:], strict=False)
        ]
    return StepResult(
        variant=variant,
        configuration=describe(options),
        steps=[list(s) for s in steps],
        per_step=per_step,
        e2e_ms=summary.e2e_latency_ms,
        drain_s=round(drain_s, 1),
        timeline=seconds,
        resources=resources,
        produced=summary.produced,
        lost=summary.lost,
        duplicates_in_db=summary.duplicates_in_db,
    )


def markdown(results: list[StepResult], command: str, objective_s: float) -> str:
    machine = f"{os.cpu_count()} cores, everything on one machine"
    steps = " → ".join(f"{rate:,.0f}/s for {seconds:g} s" for rate, seconds in results[0].steps) if results else ""
    out = [
        f"# Step load: batch sizing\n\nMachine: {machine}  \nCommand: `{command}`  \n"
        f"Load: {steps}, valid events, producer on the same machine.  \n"
        f"Objective: e2e p95 ≤ {objective_s:g} s in every step (the ShopstreamEndToEndP95AboveSLO alert's).\n",
        "| Configuration | Step | Events | p95 | p99 | Highest lag (events) | Objective held |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for i, s in enumerate(r.per_step, 1):
            out.append(
                f"| {r.variant} ({r.configuration}) | {i}: {s['rate']:,.0f}/s | {s['events']:,} | "
                f"{s['p95_ms'] / 1000:.2f}s | {s['p99_ms'] / 1000:.2f}s | {s['max_lag']:,} | "
                f"{'yes' if s['p95_ms'] <= objective_s * 1000 else 'no'} |"
            )
    out += [
        "",
        "| Configuration | Whole-run p95 | Drain after the producer stopped | Job CPU % | Lost | Duplicates |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        cpu = r.resources.get("consumer (shopstream)", {}).get("cpu_percent", "-")
        out.append(
            f"| {r.variant} | {r.e2e_ms['p95'] / 1000:.2f}s | {r.drain_s} s | {cpu} | {r.lost} | {r.duplicates_in_db} |"
        )
    return "\n".join(out) + "\n"


def write_chart(results: list[StepResult], path, objective_s: float) -> None:
    if not results:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lag, p95) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    for r in results:
        xs = [s["s"] for s in r.timeline]
        lag.plot(xs, [s["lag"] for s in r.timeline], label=f"{r.variant} ({r.configuration})")
        points = [(s["s"], s["p95_ms"] / 1000) for s in r.timeline if s["p95_ms"] is not None]
        p95.plot([x for x, _ in points], [y for _, y in points], label=r.variant)
    p95.axhline(objective_s, ls="--", color="grey", label=f"objective {objective_s:g} s")
    edge = 0.0
    for _rate, seconds in results[0].steps[:-1]:
        edge += seconds
        for ax in (lag, p95):
            ax.axvline(edge, ls=":", color="grey")
    lag.set(title="Lag: events appended to Kafka and not yet committed to PostgreSQL", ylabel="events")
    p95.set(
        title="End-to-end p95 of each second's events",
        xlabel="seconds since the first event",
        ylabel="seconds",
        yscale="log",
    )
    for ax in (lag, p95):
        ax.legend()
    fig.suptitle("Step load " + " → ".join(f"{rate:,.0f}/s" for rate, _ in results[0].steps))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def to_json(results: list[StepResult], command: str, objective_s: float) -> str:
    return json.dumps(
        {"command": command, "objective_s": objective_s, "results": [asdict(r) for r in results]}, indent=2
    )
