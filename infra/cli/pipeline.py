"""Pipeline commands: migrate, stream, run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError
from rich.table import Table

from core.exceptions import ConfigError
from core.settings import DEFAULT_FAULTS, StreamOptions
from infra.cli.app import app, console, env, settings
from infra.cli.produce import produce_options


def stream_options(**values) -> StreamOptions:
    try:
        return StreamOptions(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"invalid stream option {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


@app.command()
def migrate(
    bootstrap: Annotated[bool, typer.Option("--bootstrap", help="First create the roles and databases (needs the superuser password; `up` does this for the embedded PostgreSQL).")] = False,
) -> None:
    """Apply the pending SQL migrations in db/migrations (each once, in order)."""
    from db.migrate import migrate as apply

    cfg = settings()
    if bootstrap:
        from infra.runtime.services.postgres import bootstrap_roles_and_databases
        bootstrap_roles_and_databases(cfg)
    applied = apply(cfg)
    console.print(f"applied: {', '.join(applied)}" if applied else "database is up to date")


@app.command()
def topics() -> None:
    """Create the topics declared in infra/topics.yaml that do not exist yet (`up` does this too)."""
    from infra.topics import ensure_topics, load_topic_specs

    cfg = settings()
    created = ensure_topics(cfg, cfg.topic_prefix, load_topic_specs())
    console.print(f"created: {', '.join(created)}" if created else "all topics exist")


@app.command()
def stream(
    master: Annotated[str, typer.Option(help="Spark master: local[*], local[N] or spark://host:port.", **env("stream_master"))] = "local[*]",
    pipeline: Annotated[str, typer.Option(help="Pipeline name (ledger, consumer group, checkpoint).", **env("stream_pipeline"))] = "shopstream",
    trigger: Annotated[float, typer.Option(help="Micro-batch interval in seconds; 0 = back to back.", **env("stream_trigger"))] = 1.0,
    max_offsets_per_trigger: Annotated[int, typer.Option(help="Backpressure: records per micro-batch at most.", **env("stream_max_offsets_per_trigger"))] = 200_000,
    checkpoint_dir: Annotated[Optional[Path], typer.Option(help="Checkpoint folder (default .runtime/checkpoints/PREFIX/PIPELINE).", **env("stream_checkpoint_dir"))] = None,
    stop_when_idle: Annotated[Optional[float], typer.Option(help="Stop once caught up and idle this many seconds.", **env("stream_stop_when_idle"))] = None,
    dead_letter: Annotated[bool, typer.Option(help="Also publish quarantined records to the dead-letter topic.", **env("stream_dead_letter"))] = True,
    metrics_port: Annotated[Optional[int], typer.Option(help="Serve /metrics here; 0 = none (default: SHOPSTREAM_STREAM_METRICS_PORT).")] = None,
    ready_file: Annotated[Optional[Path], typer.Option(hidden=True)] = None,
) -> None:
    """Run the Spark Structured Streaming job: Kafka -> validate -> PostgreSQL, exactly once."""
    from db.maintenance import Maintenance
    from infra.runtime.jvm import spark_jars
    from infra.samples import warmup_rows
    from streaming.job import run as run_stream

    cfg = settings()
    options = stream_options(master=master, pipeline=pipeline, trigger_s=trigger,
                             max_offsets_per_trigger=max_offsets_per_trigger, checkpoint_dir=checkpoint_dir,
                             stop_when_idle_s=stop_when_idle, dead_letter=dead_letter, ready_file=ready_file)
    port = cfg.stream_metrics_port if metrics_port is None else metrics_port
    with console.status("streaming… (Ctrl-C stops after the current batch)") as status:
        def progress(t):
            status.update(f"streaming: {t['batches']} batches · {t['stored']:,} stored · "
                          f"{t['quarantined']:,} quarantined · {t['duplicates']:,} duplicates")
        jars = spark_jars(cfg.runtime_dir)
        upkeep = Maintenance(cfg, options.rollup_refresh_s)   # the database's own upkeep, beside the job
        upkeep.start()
        try:
            result = run_stream(cfg, options, jars, warmup_rows=warmup_rows, metrics_port=port or None,
                                progress=progress)
        finally:
            upkeep.stop()
    console.print(f"stopped after {result.batches} batches: {result.records_in:,} records in, {result.stored:,} "
                  f"stored, {result.quarantined:,} quarantined, {result.duplicates:,} duplicates, {result.late:,} late")


@app.command()
def run(
    rate: Annotated[float, typer.Option(help="Events per second to produce.", **env("run_rate"))] = 5000.0,
    duration: Annotated[float, typer.Option(help="Seconds to produce for.", **env("run_duration"))] = 30.0,
    seed: Annotated[int, typer.Option(help="Generator seed.", **env("run_seed"))] = 42,
    master: Annotated[str, typer.Option(help="Spark master.", **env("stream_master"))] = "local[*]",
    trigger: Annotated[float, typer.Option(help="Micro-batch interval in seconds.", **env("stream_trigger"))] = 0.5,
    summary_json: Annotated[Optional[Path], typer.Option(help="Also write the summary as JSON here.", **env("run_summary_json"))] = None,
) -> None:
    """The whole pipeline once: up, migrate, stream, produce, drain, then a measured report."""
    from infra.pipeline import run_pipeline

    cfg = settings()
    produce = produce_options(rate=rate, duration_s=duration, seed=seed, schema_ratio=DEFAULT_FAULTS["schema"],
                              data_type_ratio=DEFAULT_FAULTS["data_type"],
                              completeness_ratio=DEFAULT_FAULTS["completeness"],
                              business_rules_ratio=DEFAULT_FAULTS["business_rules"], duplicate_ratio=0.01)
    options = stream_options(master=master, trigger_s=trigger)
    with console.status("starting…") as status:
        def step(text):
            console.print(f"[green]▸[/] {text}")
            status.update(text + "…")

        def produced(m, elapsed):
            status.update(f"producing: {m.produced:,} acknowledged · {m.produced / max(elapsed, 1e-9):,.0f} ev/s · "
                          f"{elapsed:.0f}/{duration:.0f} s")

        def draining(committed):
            done = sum(o for parts in committed.values() for o in parts.values())
            status.update(f"draining: ledger at offset sum {done:,}")

        summary = run_pipeline(cfg, produce, options, on_step=step, on_produce=produced, on_drain=draining)
    print_summary(summary)
    from infra.cli.report import print_report
    from monitoring import report as rep

    with console.status("timing database queries and drawing charts…"):
        measured = rep.build(cfg, minutes=max(5.0, duration / 60 + 5), query_runs=10)
        live = rep.live_metrics(cfg)
        png = rep.write_png(measured, cfg.runtime_dir / "report.png")
    print_report(measured, live)
    console.print(f"charts: {png}")
    if summary_json:
        summary_json.parent.mkdir(parents=True, exist_ok=True)
        summary_json.write_text(json.dumps(summary, indent=2) + "\n")
        console.print(f"summary: {summary_json}")
    if summary["lost"] or summary["duplicates_in_db"]:
        raise typer.Exit(1)


def print_summary(s: dict) -> None:
    key = Table(title="Key indicators (measured)")
    for column in ("produced", "unique events", "stored", "quarantined", "duplicates in DB", "lost",
                   "throughput ev/s", "e2e p95 ms", "late events"):
        key.add_column(column, justify="right")
    key.add_row(f"{s['produced']:,}", f"{s['unique_events']:,}", f"{s['stored']:,}", f"{s['quarantined']:,}",
                str(s["duplicates_in_db"]), str(s["lost"]), f"{s['throughput_eps']:,.0f}",
                f"{s['e2e_latency_ms']['p95']:,.0f}", f"{s['late_events']:,}")
    console.print(key)
    stages = Table(title="Latency breakdown (ms, on-time events)")
    for column in ("stage", "average", "95th percentile", "maximum"):
        stages.add_column(column, justify="right")
    for stage, v in s["stages_ms"].items():
        stages.add_row(stage, f"{v['avg']:,.1f}", f"{v['p95']:,.1f}", f"{v['max']:,.1f}")
    console.print(stages)
    quality = Table(title="Data quality (quarantined by category)")
    for column in ("category", "records", "expected (producer manifest)", "rules"):
        quality.add_column(column, justify="right")
    for category, n in s["quality"].items():
        rules = ", ".join(f"{r} {c}" for r, c in s["quality_by_rule"][category].items())
        quality.add_row(category, f"{n:,}", f"{s.get('manifest_quality', {}).get(category, 0):,}", rules)
    console.print(quality)


@app.command()
def exporter(
    pipeline: Annotated[str, typer.Option(help="Pipeline whose ledger the lag is measured against.", **env("stream_pipeline"))] = "shopstream",
    interval: Annotated[float, typer.Option(help="Seconds between measurements.")] = 5.0,
    port: Annotated[Optional[int], typer.Option(help="Serve /metrics here (default: SHOPSTREAM_EXPORTER_METRICS_PORT).")] = None,
) -> None:
    """Serve consumer lag (log end minus ledger), rollup age and partition counts on /metrics."""
    from monitoring.exporter import run as run_exporter

    cfg = settings()
    console.print(f"exporting on :{port or cfg.exporter_metrics_port}/metrics every {interval:g} s (Ctrl-C stops)")
    run_exporter(cfg, pipeline, interval, port=port)
