"""`shopstream produce`: the generator and producer, with live progress and a summary."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from infra.cli.app import app, console, settings
from infra.cli.options import Options, with_options
from producers.options import ProduceOptions

PRODUCE = Options("options", ProduceOptions, "produce", "Produce options")


@app.command()
@with_options(PRODUCE)
def produce(options: ProduceOptions) -> None:
    """Generate realistic shop events and publish them to Kafka, Avro-encoded via the registry.

    With --manifest, that file is the run's journal while it runs: `produce --resume FILE` finishes a run
    that was killed, sending only the events that are not in Kafka yet."""
    import producers
    from producers import resume

    cfg = settings()
    if options.resume:  # the killed run's options, for the bar (producers.run reads them again)
        options = resume.load(options.resume).options.model_copy(update={"resume": options.resume})
    manifest = options.manifest_path
    port = cfg.producer_metrics_port
    total = options.count if options.count else options.duration_s  # None (--forever): a bar without end
    unit = "events" if options.count else "s"
    with Progress(
        TextColumn("[bold]produce"),
        BarColumn(),
        TextColumn("{task.fields[line]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("produce", total=total, line="connecting…")

        def progress(m, elapsed):
            done = m.generated if options.count else elapsed
            bar.update(
                task,
                completed=min(done, total) if total else done,
                line=(
                    f"{m.generated:,} sent · {m.produced:,} acked · {sum(m.failed.values()):,} failed · "
                    f"{m.produced / elapsed if elapsed else 0:,.0f} ev/s ({unit})"
                ),
            )

        result = producers.run(
            cfg,
            options,
            progress=progress,
            metrics_port=port or None,
            on_resume=lambda line: bar.update(task, line=line),
        )
    m = result.manifest
    table = Table(title="produce summary")  # label/value rows: whole in an 80-column terminal
    table.add_column("")
    table.add_column("", justify="right", no_wrap=True)
    for label, value in (
        ("generated", f"{m.generated:,}"),
        ("acknowledged", f"{m.produced:,}"),
        ("failed", f"{sum(m.failed.values()):,}"),
        ("duplicates (by design)", f"{m.duplicates:,}"),
        ("bad (by design)", f"{sum(m.to_dict()['quality'].values()):,}"),
        ("seconds", f"{result.seconds:.1f}"),
        ("events/s", f"{result.events_per_second:,.0f}"),
    ):
        table.add_row(label, value)
    console.print(table)
    if manifest:
        console.print(f"manifest: {manifest}")
    if m.failed:
        raise typer.Exit(1)
