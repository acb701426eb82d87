"""`shopstream produce`: the generator and producer, with live progress and a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.exceptions import ConfigError
from core.settings import DEFAULT_FAULTS, FaultRatios, ProduceOptions
from infra.cli.app import app, console, env, settings


def produce_options(**values) -> ProduceOptions:
    """ProduceOptions from flag values, with validation errors as one line."""
    faults = {k: values.pop(f"{k}_ratio") for k in ("schema", "data_type", "completeness", "business_rules")}
    try:
        return ProduceOptions(faults=FaultRatios(**faults), **{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "options"
        raise ConfigError(f"invalid produce option {where}: {first['msg']}") from None


@app.command()
def produce(
    rate: Annotated[float, typer.Option(help="Events per second; 0 = as fast as possible.", **env("produce_rate"))] = 5000.0,
    duration: Annotated[Optional[float], typer.Option(help="Seconds to produce for.", **env("produce_duration"))] = None,
    count: Annotated[Optional[int], typer.Option(help="Number of events to produce.", **env("produce_count"))] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed and run id, same events.", **env("produce_seed"))] = 42,
    run_id: Annotated[Optional[str], typer.Option(help="Mixed into event ids (default: random).", **env("produce_run_id"))] = None,
    schema_ratio: Annotated[float, typer.Option(help="Share of undecodable / unknown-schema / unframed messages.", **env("produce_schema_ratio"))] = DEFAULT_FAULTS["schema"],
    data_type_ratio: Annotated[float, typer.Option(help="Share with a broken timestamp, currency or quantity sign.", **env("produce_data_type_ratio"))] = DEFAULT_FAULTS["data_type"],
    completeness_ratio: Annotated[float, typer.Option(help="Share missing a required field or order lines.", **env("produce_completeness_ratio"))] = DEFAULT_FAULTS["completeness"],
    business_rules_ratio: Annotated[float, typer.Option(help="Share breaking a business rule (price, quantity, future time, totals).", **env("produce_business_rules_ratio"))] = DEFAULT_FAULTS["business_rules"],
    duplicate_ratio: Annotated[float, typer.Option(help="Share re-sent with the same event_id.", **env("produce_duplicate_ratio"))] = 0.01,
    late_ratio: Annotated[float, typer.Option(help="Share whose event_time lags (late / out of order).", **env("produce_late_ratio"))] = 0.02,
    v2_ratio: Annotated[float, typer.Option(help="Share of clickstream events written with schema v2.", **env("produce_v2_ratio"))] = 0.5,
    burst: Annotated[bool, typer.Option(help="2 s at 3x the rate, then 4 s quiet (same average).", **env("produce_burst"))] = False,
    manifest: Annotated[Optional[Path], typer.Option(help="Write what was acknowledged, by quality outcome, as JSON.", **env("produce_manifest"))] = None,
    metrics_port: Annotated[Optional[int], typer.Option(help="Serve /metrics here; 0 = none (default: SHOPSTREAM_PRODUCER_METRICS_PORT).")] = None,
) -> None:
    """Generate realistic shop events and publish them to Kafka, Avro-encoded via the registry."""
    import producers

    cfg = settings()
    options = produce_options(rate=rate, duration_s=duration, count=count, seed=seed, run_id=run_id,
                              schema_ratio=schema_ratio, data_type_ratio=data_type_ratio,
                              completeness_ratio=completeness_ratio, business_rules_ratio=business_rules_ratio,
                              duplicate_ratio=duplicate_ratio, late_ratio=late_ratio, v2_ratio=v2_ratio,
                              burst=burst, manifest_path=manifest)
    port = cfg.producer_metrics_port if metrics_port is None else metrics_port
    total = options.count if options.count else options.duration_s
    unit = "events" if options.count else "s"
    with Progress(TextColumn("[bold]produce"), BarColumn(), TextColumn("{task.fields[line]}"), TimeElapsedColumn(),
                  console=console, transient=False) as bar:
        task = bar.add_task("produce", total=total, line="connecting…")

        def progress(m, elapsed):
            done = m.generated if options.count else elapsed
            bar.update(task, completed=min(done, total), line=(
                f"{m.generated:,} sent · {m.produced:,} acked · {sum(m.failed.values()):,} failed · "
                f"{m.produced / elapsed if elapsed else 0:,.0f} ev/s ({unit})"))

        result = producers.run(cfg, options, progress=progress, metrics_port=port or None)
    m = result.manifest
    table = Table(title="produce summary")
    for column in ("generated", "acknowledged", "failed", "duplicates", "bad (by design)", "seconds", "events/s"):
        table.add_column(column, justify="right")
    table.add_row(f"{m.generated:,}", f"{m.produced:,}", f"{sum(m.failed.values()):,}", f"{m.duplicates:,}",
                  f"{sum(m.to_dict()['quality'].values()):,}", f"{result.seconds:.1f}", f"{result.events_per_second:,.0f}")
    console.print(table)
    if manifest:
        console.print(f"manifest: {manifest}")
    if m.failed:
        raise typer.Exit(1)
