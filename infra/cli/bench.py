"""`shopstream bench …`: benchmarks measured live against the running stack."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from core.exceptions import DependencyMissing, ShopstreamError
from infra.bench.options import (
    CatchupBenchOptions,
    E2EBenchOptions,
    ProducerBenchOptions,
    StepBenchOptions,
    TransformBenchOptions,
)
from infra.cli.app import app, console, settings
from infra.cli.options import Options, with_options

bench_app = typer.Typer(help="Benchmarks measured live (never timed unit tests).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("producer")
@with_options(Options("options", ProducerBenchOptions, "bench"))
def bench_producer(options: ProducerBenchOptions) -> None:
    """Sustained events/s of one producer process to the local broker, acks=all."""
    if options.profile:
        _profile_self(options.profile)
        return
    from infra.bench import producer as bench

    json_out = options.json_out
    result = bench.run(settings(), duration_s=options.duration_s, rate=options.rate, with_faults=not options.clean)
    table = Table(title="producer benchmark (one process, acks=all, idempotent, lz4)")
    for column in ("events", "failed", "seconds", "events/s", "CPU s", "events per CPU-s", "CPU use"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{result.events:,}",
        str(result.failed),
        f"{result.seconds}",
        f"{result.events_per_second:,}",
        f"{result.cpu_seconds}",
        f"{result.events_per_cpu_second:,}",
        f"{result.cpu_utilisation:.0%}",
    )
    console.print(table)
    if json_out:
        json_out.write_text(json.dumps(result.to_dict(), indent=2) + "\n")


def _profile_self(folded: Path) -> None:
    """Re-run this benchmark under py-spy (collapsed stacks), then print the hottest functions."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.access(spy, os.X_OK):
        raise DependencyMissing("py-spy is not installed: pip install py-spy (it is in the [bench] extra)")
    argv = list(sys.argv[1:])
    i = argv.index("--profile")
    del argv[i : i + 2]
    subprocess.run(
        [
            spy,
            "record",
            "--rate",
            "250",
            "--nonblocking",
            "--format",
            "raw",
            "-o",
            str(folded),
            "--",
            sys.executable,
            "-m",
            "infra",
            *argv,
        ],
        check=True,
    )
    own, total = Counter(), 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        own[stack.split(";")[-1]] += int(count)
    table = Table(title=f"py-spy: self time by function ({total} samples)")
    table.add_column("function (file:line)")
    table.add_column("self %", justify="right")
    for frame, n in own.most_common(15):
        table.add_row(frame, f"{100 * n / total:.1f}")
    console.print(table)
    console.print(f"collapsed stacks (open in speedscope or flamegraph.pl): {folded}")


@bench_app.command("transform")
@with_options(Options("options", TransformBenchOptions, "bench"))
def bench_transform(options: TransformBenchOptions) -> None:
    """The Spark transformation (decode, validate, format) alone, on a static batch: no services."""
    from infra.bench import transform

    size_list, reps, json_out = options.sizes, options.reps, options.json_out
    with console.status("timing the Spark transformation (local[2])…"):
        results = transform.run(size_list, reps)
    table = Table(title=f"Spark transformation, static batch, local[2], {reps} repetitions")
    for column in ("events", "output rows", "median s", "min s", "events/s (median)"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            f"{r.events:,}", f"{r.output_rows:,}", f"{r.median_s:.3f}", f"{r.min_s:.3f}", f"{r.events_per_second:,.0f}"
        )
    console.print(table)
    if json_out:
        json_out.write_text(json.dumps([r.to_dict() for r in results], indent=2) + "\n")


def _install_peers(cfg, systems: list[str]) -> None:
    from infra.bench import peers

    for system in systems:
        if system in peers.INSTALLED:
            with console.status(f"{system}: installing {peers.INSTALLED[system]} (first run only)…"):
                peers.ensure_installed(cfg, system)


@bench_app.command("e2e")
@with_options(Options("options", E2EBenchOptions, "bench"))
def bench_e2e(options: E2EBenchOptions) -> None:
    """The seed's throughput-under-load table, for shopstream and its peers, side by side."""
    import sys as _sys

    from infra.bench import e2e

    out, smoke, duration, warmup = options.out, options.smoke, options.duration_s, options.warmup_s
    search, scaling = options.search, options.scaling
    if options.render_only:
        if not (out / "bench.json").exists():
            raise ShopstreamError(f"no {out / 'bench.json'} to render: run `shopstream bench e2e --out {out}` first")
        _write_report(e2e, e2e.load_report(out / "bench.json"), out)
        return
    from infra.runtime import stack

    cfg = settings()
    level_list = [500.0] if smoke else options.levels
    system_list = list(dict.fromkeys(options.systems))
    _install_peers(cfg, system_list)
    stack.up(cfg)
    out.mkdir(parents=True, exist_ok=True)

    def interrupt(signum, frame):  # SIGTERM as Ctrl-C: the level in progress stops its consumer and drops its data
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    with console.status("benchmarking…") as status:

        def on_level(lv):
            (out / "bench.partial.jsonl").open("a").write(json.dumps(lv.__dict__, default=str) + "\n")
            console.print(
                f"{lv.system:>10} @ {lv.target_rate:>7,.0f}/s{e2e._variant(lv)}: out {lv.output_rate:,.0f}/s, "
                f"p95 {lv.e2e_ms['p95'] / 1000:.2f}s, drain {lv.drain_s}s, lost {lv.lost}, "
                f"{'sustainable' if lv.sustainable else 'NOT sustainable'}"
            )
            status.update("benchmarking…")

        report = e2e.run(
            cfg,
            level_list,
            5.0 if smoke else duration,
            system_list,
            search and not smoke,
            scaling and not smoke,
            "shopstream " + " ".join(_sys.argv[1:]),
            on_level,
            warmup_s=2.0 if smoke else warmup,
            trigger_s=options.trigger_s,
            job_warmup=options.job_warmup,
            bad_data=options.bad_data,
        )
    (out / "bench.json").write_text(report.to_json())
    (out / "bench.partial.jsonl").unlink(missing_ok=True)
    _write_report(e2e, report, out)


@bench_app.command("catchup")
@with_options(Options("options", CatchupBenchOptions, "bench"))
def bench_catchup(options: CatchupBenchOptions) -> None:
    """How fast each system drains a backlog (after an outage, a replay): the events are produced first, then the
    consumer starts; start-up and drain are timed apart."""
    from infra.bench import catchup
    from infra.runtime import stack

    cfg = settings()
    systems = list(dict.fromkeys(options.systems))
    _install_peers(cfg, systems)
    stack.up(cfg)
    options.out.mkdir(parents=True, exist_ok=True)
    command = "shopstream " + " ".join(sys.argv[1:])
    results = []
    for system in systems:
        with console.status(f"{system}: producing {options.events:,} events, then draining them…"):
            r = catchup.run_system(cfg, system, options.events, options.job_warmup)
        console.print(
            f"{system:>10}: {r.events:,} events drained in {r.drain_s} s ({r.events_per_second:,.0f}/s) "
            f"after a {r.start_s} s start-up; lost {r.lost}, duplicates {r.duplicates_in_db}"
        )
        results.append(r)
        (options.out / "catchup.json").write_text(catchup.to_json(results, command))
    (options.out / "catchup.md").write_text(catchup.markdown(results, command))
    console.print(f"written: {options.out / 'catchup.md'}")


@bench_app.command("step")
@with_options(Options("options", StepBenchOptions, "bench"))
def bench_step(options: StepBenchOptions) -> None:
    """Batch sizing under a step load (5,000 -> 20,000 -> 5,000/s by default): p95 per step and lag over time,
    for the job's adaptive batches and for a fixed batch size, one after the other."""
    from infra.bench import step
    from infra.runtime import stack

    cfg = settings()
    stack.up(cfg)
    options.out.mkdir(parents=True, exist_ok=True)
    command = "shopstream " + " ".join(sys.argv[1:])
    steps = options.steps
    total = sum(seconds for _, seconds in steps)
    results = []
    for variant in dict.fromkeys(options.variants):
        with console.status(f"{variant}: the stream job under the step load ({total:g} s), then its drain…"):
            r = step.run_variant(cfg, variant, steps, options.trigger_s, options.job_warmup)
        held = sum(s["p95_ms"] <= options.objective_s * 1000 for s in r.per_step)
        by_step = " / ".join(f"{s['p95_ms'] / 1000:.2f}s" for s in r.per_step)
        console.print(
            f"{variant:>9} ({r.configuration}): p95 by step {by_step}, highest lag "
            f"{max(s['max_lag'] for s in r.per_step):,}, objective held in {held} of {len(r.per_step)} "
            f"steps; lost {r.lost}, duplicates {r.duplicates_in_db}"
        )
        results.append(r)
        (options.out / "step.json").write_text(step.to_json(results, command, options.objective_s))
    (options.out / "step.md").write_text(step.markdown(results, command, options.objective_s))
    step.write_chart(results, options.out / "step.png", options.objective_s)
    console.print(f"written: {options.out}/step.json, step.md, step.png")


def _write_report(e2e, report, out: Path) -> None:
    (out / "bench.md").write_text(report.markdown())
    e2e.write_chart(report, out / "bench.png")
    console.print(report.markdown())
    console.print(f"written: {out}/bench.json, bench.md, bench.png")


@bench_app.command("peer-plain", hidden=True)
def bench_peer_plain(
    pipeline: Annotated[str, typer.Option()],
    ready_file: Annotated[Path | None, typer.Option()] = None,
) -> None:
    """The plain confluent-kafka + fastavro + COPY consumer (run by `bench e2e`)."""
    import signal
    import threading

    from infra.bench.peers.plain import consumer as plain_consumer

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    plain_consumer.run(settings(), pipeline, stop, ready_file)
