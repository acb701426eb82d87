"""`shopstream report`: the seed report's tables with live, measured numbers, and a PNG."""

from __future__ import annotations

import math

from rich.table import Table

from infra.cli.app import app, console, settings
from infra.cli.options import Options, with_options
from monitoring.options import ReportOptions


@app.command()
@with_options(Options("options", ReportOptions, "report"))
def report(options: ReportOptions) -> None:
    """Key indicators, latency breakdown, throughput, data quality and query performance, in the terminal, as a
    self-contained HTML page and as a PNG."""
    from core.exceptions import ConfigError
    from monitoring import charts
    from monitoring import report as rep
    from producers.manifest import Manifest

    cfg = settings()
    manifest = None
    if options.manifest_path:
        try:
            manifest = Manifest.read(options.manifest_path)
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"--manifest {options.manifest_path} is not a producer manifest ({exc}): give the "
                f"file `produce --manifest` wrote"
            ) from None
    with console.status("measuring…"):
        r = rep.build(cfg, minutes=options.minutes, query_runs=options.query_runs)
        live = rep.live_metrics(cfg)
        page = charts.write_html(r, options.html or cfg.runtime_dir / "report.html", manifest)
        png = charts.write_png(r, options.png or cfg.runtime_dir / "report.png", manifest)
    print_report(r, live)
    console.print(f"report: {page}", highlight=False, soft_wrap=True)
    console.print(f"charts: {png}", highlight=False, soft_wrap=True)


def print_report(r, live) -> None:
    t = r.totals
    key = Table(title=f"Key indicators (last {r.minutes:g} min, from the database)")  # label/value: 80 columns
    key.add_column("indicator")
    key.add_column("value", justify="right", no_wrap=True)
    e2e = r.stages.get("end_to_end", {})
    for label, value in (
        ("records", f"{t['records']:,}"),
        ("stored", f"{t['stored']:,}"),
        ("quarantined", f"{t['quarantined']:,}"),
        ("duplicates dropped", f"{t['duplicates']:,}"),
        ("late", f"{t['late']:,}"),
        ("batches", f"{t['batches']:,}"),
        ("events/s", f"{t['events_per_second']:,.0f}"),
        ("e2e p95", f"{e2e.get('p95', math.nan) / 1000:.2f} s"),
    ):
        key.add_row(label, value)
    console.print(key)
    lat = Table(title="End-to-end latency breakdown (on-time events)")
    for column in ("stage", "average", "95th percentile", "maximum", "live p95 (Prometheus)"):
        lat.add_column(column, justify="right", no_wrap=column == "stage")
    for stage, v in r.stages.items():
        live_p95 = live["p95"].get(stage) if live else None
        lat.add_row(
            stage,
            f"{v['avg'] / 1000:.3f} s",
            f"{v['p95'] / 1000:.3f} s",
            f"{v['max'] / 1000:.3f} s",
            "-" if live_p95 is None or math.isnan(live_p95) else f"{live_p95:.3f} s",
        )
    console.print(lat)
    if live is None:
        console.print("[yellow]Prometheus is not reachable: live columns are empty (run `shopstream up`).[/]")
    quality = Table(title="Validation performance")
    for column in ("validation type", "records checked", "failed", "success rate"):
        quality.add_column(column, justify="right")
    for category, q in r.quality.items():
        quality.add_row(category, f"{q['checked']:,}", f"{q['failed']:,}", f"{q['success_rate']:.2%}")
    failed = sum(q["failed"] for q in r.quality.values())
    records = t["records"] or 1
    quality.add_row("overall", f"{t['records']:,}", f"{failed:,}", f"{1 - failed / records:.2%}")
    console.print(quality)
    queries = Table(title="Query performance (timed now, against the stored data)")
    for column in ("query type", "average", "95th percentile", "runs"):
        queries.add_column(column, justify="right")
    for name, q in r.queries.items():
        queries.add_row(name, f"{q['avg']:.1f} ms", f"{q['p95']:.1f} ms", str(q["runs"]))
    console.print(queries)
