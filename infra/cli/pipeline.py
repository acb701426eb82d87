"""Pipeline commands: migrate, stream, run."""

from __future__ import annotations

import json
from functools import partial
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from db.options import MaintainOptions
from infra.cli.app import app, console, err_console, settings
from infra.cli.options import Options, with_options
from infra.orchestration.run import RunOptions
from monitoring.options import ExporterOptions
from producers.options import ProduceOptions
from streaming.options import StreamOptions


@app.command()
def migrate(
    bootstrap: Annotated[
        bool,
        typer.Option(
            "--bootstrap",
            help="First create the roles and databases (needs the superuser password; `up` does this for the embedded PostgreSQL).",
        ),
    ] = False,
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
    """Create the topics declared in infra/runtime/topics.yaml that do not exist yet (`up` does this too)."""
    from infra.runtime.topics import ensure_topics, load_topic_specs

    cfg = settings()
    created = ensure_topics(cfg, cfg.topic_prefix, load_topic_specs())
    console.print(f"created: {', '.join(created)}" if created else "all topics exist")


REPLAY_ONLY = ("end_offsets", "replay_of")  # set by `shopstream replay`
STREAM = Options("options", StreamOptions, "stream", "Stream options", exclude=REPLAY_ONLY)
RUN_STREAM = Options(
    "stream_options",
    StreamOptions,
    "stream",
    "Stream options",
    exclude=("ready_file", "stop_when_idle_s", "from_group_offsets", *REPLAY_ONLY),
)
RUN_PRODUCE = Options(
    "produce_options",
    ProduceOptions,
    "produce",
    "Produce options",
    exclude=("count", "resume", "forever", "load_dimensions"),  # `run` is bounded, and loads the dimensions itself
    defaults={"duration_s": 30.0},
)


@app.command()
@with_options(STREAM)
def stream(options: StreamOptions) -> None:
    """Run the Spark Structured Streaming job: Kafka -> validate -> PostgreSQL, exactly once."""
    import os
    import sys

    from core.exceptions import FENCED_EXIT, TEMPFAIL_EXIT, DependencyUnavailable
    from db.maintenance import Maintenance
    from infra.orchestration.processes import child_env
    from infra.orchestration.samples import warmup_topics
    from infra.orchestration.supervisor import (
        DRIVER_SLOT_ENV,
        LAST_FAILURE_ENV,
        RESTARTS_ENV,
        supervise,
        supervise_pair,
    )
    from infra.runtime.jvm import spark_class_archive, spark_jars
    from streaming.job import run as run_stream
    from streaming.lease import Fenced, drivers_dir

    cfg = settings()
    if options.supervise:  # this process only restarts the job's process (or, --standby, both drivers') when it dies
        worker = options.model_copy(update={"supervise": False})
        argv, env = [sys.executable, "-m", "infra", "stream"], child_env(cfg, stream=worker)
        if options.standby:  # the second driver starts once the first has its role (its record in run/drivers/)
            drivers = drivers_dir(cfg)
            raise typer.Exit(supervise_pair(argv, env, decided=lambda pid: (drivers / f"{pid}.json").exists()))
        raise typer.Exit(supervise(argv, env))
    restarts = json.loads(os.environ.get(RESTARTS_ENV, "{}"))
    last_failure = float(os.environ.get(LAST_FAILURE_ENV) or 0) or None
    if restarts:  # the group was applied by the first process; a restarted one resumes from its checkpoint
        options = options.model_copy(update={"from_group_offsets": False})
    upkeep = Maintenance(cfg, options.rollup_refresh_s)  # the database's own upkeep: the active driver's alone
    with console.status("streaming… (Ctrl-C stops after the current batch)") as status:

        def progress(t):
            status.update(
                f"streaming: {t['batches']} batches · {t['stored']:,} stored · "
                f"{t['quarantined']:,} quarantined · {t['duplicates']:,} duplicates"
            )

        jars = spark_jars(cfg.runtime_dir)
        if cfg.spark_class_archive:
            options = options.model_copy(update={"class_archive": spark_class_archive(cfg.runtime_dir)})
        try:
            # A restarted active driver has a backlog waiting: it consumes at once, and its first batch pays for the
            # compilation, rather than spend ~17 s warming up first (bench-results/faults/: SIGKILL recovery); the
            # job skips the warm-up then. A standby always warms up, on topics of its own.
            warm_name = options.pipeline + (
                f"-{os.environ.get(DRIVER_SLOT_ENV, os.getpid())}" if options.standby else ""
            )
            warmup = partial(warmup_topics, cfg, warm_name) if options.warmup else None
            result = run_stream(
                cfg,
                options,
                jars,
                warmup=warmup,
                metrics_port=cfg.stream_metrics_port or None,
                progress=progress,
                restarts=restarts,
                last_failure=last_failure,
                on_active=upkeep.start,
                standby_metrics_port=cfg.stream_standby_metrics_port or None,
            )
        except DependencyUnavailable as exc:  # weather: the supervisor starts this process again, with backoff
            err_console.print(f"[yellow]waiting:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(TEMPFAIL_EXIT) from None
        except Fenced as exc:  # another driver holds the lease: the supervisor starts this one again, as its standby
            err_console.print(f"[yellow]fenced:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(FENCED_EXIT) from None
        finally:
            upkeep.stop()
    console.print(
        f"stopped after {result.batches} batches: {result.records_in:,} records in, {result.stored:,} "
        f"stored, {result.quarantined:,} quarantined, {result.duplicates:,} duplicates, {result.late:,} late"
    )


@app.command()
@with_options(
    Options(
        "options",
        StreamOptions,
        "stream",
        "Stream options",
        exclude=(*REPLAY_ONLY, "from_group_offsets", "stop_when_idle_s", "ready_file"),
    )
)
def replay(
    options: StreamOptions,
    since: Annotated[
        str,
        typer.Option(
            "--from", help="Replay from this time: ISO 8601, UTC unless it says (2026-11-30T10:00), or 'earliest'."
        ),
    ],
    until: Annotated[
        str | None,
        typer.Option(
            "--to",
            help=(
                "End of a bounded replay: it runs beside the live job under its own pipeline name (PIPELINE-replay), "
                "stops at this time and reports what it read; without it, the live job itself is rewound."
            ),
        ),
    ] = None,
) -> None:
    """Replay Kafka from a time: reset the consumer group with Kafka's own tool, then stream from it. Nothing is
    stored twice; KPIs, quarantine and quality counts do not change."""
    import os
    import sys

    from confluent_kafka import KafkaException

    import schemas
    from core.kafka import log_end_offsets, unreachable
    from infra.orchestration.processes import child_env
    from infra.orchestration.replay import bounded, parse_window, refuse_if_running, reset_group

    cfg = settings()
    window = parse_window(since, until)
    topics = list(schemas.event_topics(cfg).values())
    try:
        # Kafka answers first: its consumer-groups tool does not always fail when it cannot reach the broker.
        log_end_offsets(cfg, topics)
        if window.until_ms is None:  # the live job, rewound: reset its group, then become `stream --from-group-offsets`
            refuse_if_running(cfg, options.pipeline)
            reset_group(cfg, options.pipeline, topics, window.since_ms)
            console.print(f"consumer group {options.pipeline} reset to {since}; streaming from it (Ctrl-C stops)")
            live = options.model_copy(update={"from_group_offsets": True})
            os.execve(
                sys.executable,
                [sys.executable, "-m", "infra", "stream"],
                child_env(cfg, stream=live),
            )
        with console.status("replaying…") as status:

            def progress(t):
                status.update(
                    f"replaying: {t['batches']} batches · {t['records_in']:,} read · {t['stored']:,} new "
                    f"· {t['duplicates']:,} duplicates"
                )

            result = bounded(cfg, options, window, progress)
    except KafkaException as exc:
        raise unreachable(cfg, exc) from None
    stream = result.stream
    if stream is None:
        console.print(f"nothing to replay between {since} and {until}: the range holds no record")
        return
    rate = f"{stream.records_in / stream.seconds:,.0f} records/s" if stream.seconds else ""
    console.print(
        f"replayed {stream.records_in:,} records in {stream.seconds:.1f} s ({rate}; "
        f"{stream.batches} batches): {stream.stored:,} new rows, {stream.duplicates:,} duplicates skipped, "
        f"{stream.quarantined:,} quarantined anew; pipeline {result.pipeline}, the live resume point "
        f"untouched",
        soft_wrap=True,
    )


@app.command()
@with_options(Options("run_options", RunOptions, "run"), RUN_PRODUCE, RUN_STREAM)
def run(run_options: RunOptions, produce_options: ProduceOptions, stream_options: StreamOptions) -> None:
    """The whole pipeline once: up, migrate, stream, produce, drain, then a measured report."""
    from infra.orchestration.run import run_pipeline

    cfg = settings()
    produce, options, summary_json = produce_options, stream_options, run_options.summary_json
    if produce.manifest_path is None:  # the report's produced series and run parameters come from it
        produce = produce.model_copy(update={"manifest_path": cfg.runtime_dir / "manifest.json"})
    duration = produce.duration_s
    with console.status("starting…") as status:

        def step(text):
            console.print(f"[green]▸[/] {text}")
            status.update(text + "…")

        def produced(m, elapsed):
            status.update(
                f"producing: {m.produced:,} acknowledged · {m.produced / max(elapsed, 1e-9):,.0f} ev/s · "
                f"{elapsed:.0f}/{duration:.0f} s"
            )

        def draining(committed):
            done = sum(o for parts in committed.values() for o in parts.values())
            status.update(f"draining: ledger at offset sum {done:,}")

        result = run_pipeline(cfg, produce, options, on_step=step, on_produce=produced, on_drain=draining)
    summary = result.to_dict()
    print_summary(summary)
    from infra.cli.report import print_report
    from monitoring import charts
    from monitoring import report as rep
    from producers.manifest import Manifest

    with console.status("timing database queries and drawing charts…"):
        measured = rep.build(cfg, minutes=max(5.0, duration / 60 + 5), query_runs=10)
        live = rep.live_metrics(cfg)
        manifest = Manifest.read(produce.manifest_path)
        page = charts.write_html(measured, cfg.runtime_dir / "report.html", manifest, summary)
        png = charts.write_png(measured, cfg.runtime_dir / "report.png", manifest)
    print_report(measured, live)
    console.print(f"report: {page}", highlight=False, soft_wrap=True)
    console.print(f"charts: {png}", highlight=False, soft_wrap=True)
    if summary_json:
        summary_json.parent.mkdir(parents=True, exist_ok=True)
        summary_json.write_text(json.dumps(summary, indent=2) + "\n")
        console.print(f"summary: {summary_json}")
    if result.measured.lost or result.measured.duplicates_in_db:
        raise typer.Exit(1)


def print_summary(s: dict) -> None:
    key = Table(title="Key indicators (measured)")  # label/value rows: whole in an 80-column terminal
    key.add_column("indicator")
    key.add_column("value", justify="right", no_wrap=True)
    for label, value in (
        ("produced", f"{s['produced']:,}"),
        ("unique events", f"{s['unique_events']:,}"),
        ("stored", f"{s['stored']:,}"),
        ("quarantined", f"{s['quarantined']:,}"),
        ("duplicates in DB", str(s["duplicates_in_db"])),
        ("lost", str(s["lost"])),
        ("throughput ev/s", f"{s['throughput_eps']:,.0f}"),
        ("e2e p95 ms", f"{s['e2e_latency_ms']['p95']:,.0f}"),
        ("late events", f"{s['late_events']:,}"),
    ):
        key.add_row(label, value)
    made_late = s.get("injected_lateness_s")
    if made_late and made_late["events"]:
        key.add_row(
            "made late on purpose",
            f"{made_late['events']:,} · median {made_late['p50']:g} s · max {made_late['max']:g} s",
        )
    console.print(key)
    stages = Table(title="Latency breakdown (ms, on-time events)")
    for column in ("stage", "average", "95th percentile", "maximum"):
        stages.add_column(column, justify="right")
    for stage, v in s["stages_ms"].items():
        stages.add_row(stage, f"{v['avg']:,.1f}", f"{v['p95']:,.1f}", f"{v['max']:,.1f}")
    console.print(stages)
    quality = Table(title="Data quality (quarantined by category)")
    for column in ("category", "records", "manifest", "rules"):
        quality.add_column(
            column, justify="left" if column == "rules" else "right", overflow="fold", no_wrap=column != "rules"
        )
    for category, n in s["quality"].items():
        rules = "\n".join(f"{r} {c:,}" for r, c in s["quality_by_rule"][category].items())
        quality.add_row(category, f"{n:,}", f"{s.get('manifest_quality', {}).get(category, 0):,}", rules)
    console.print(quality)
    r = s.get("restarts", {})
    parts = [f"stream job {reason} ×{n}" for reason, n in r.get("stream", {}).items()]
    parts += [f"{name} ×{n} (watchdog)" for name, n in r.get("services", {}).items()]
    console.print(f"restarts: {', '.join(parts) if parts else 'none'}")
    console.print(f"sink retries: {r.get('sink_retries', 0)}")


@app.command()
def health() -> None:
    """Exit 0 if the stream job answers, its query runs, and it is neither retrying nor stalled; else say why and
    exit 1 (the compose healthcheck runs this)."""
    from infra.orchestration.processes import job_health

    ok, why = job_health(settings())
    console.print(f"[green]✔[/] {why}" if ok else f"[red]✘[/] {why}")
    if not ok:
        raise typer.Exit(1)


@app.command()
@with_options(Options("options", ExporterOptions, "exporter"))
def exporter(options: ExporterOptions) -> None:
    """Serve consumer lag (log end minus ledger), rollup age and partition counts on /metrics."""
    from monitoring.exporter import run as run_exporter

    cfg = settings()
    console.print(f"exporting on :{cfg.exporter_metrics_port}/metrics every {options.interval_s:g} s (Ctrl-C stops)")
    run_exporter(cfg, options.pipeline, options.interval_s)


@app.command()
@with_options(Options("options", MaintainOptions, "maintain"))
def maintain(options: MaintainOptions) -> None:
    """Database upkeep: refresh the rollups, create the daily partitions ahead, drop those past retention."""
    from db.maintenance import run as run_maintenance

    cfg = settings()
    if options.interval_s:
        console.print(f"database upkeep every {options.interval_s:g} s (Ctrl-C stops)")
    run_maintenance(cfg, options.interval_s)
    if not options.interval_s:
        console.print("rollups refreshed, partitions kept")
