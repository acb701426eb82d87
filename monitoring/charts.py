"""The report's charts: one self-contained HTML page (plotly) and a PNG (matplotlib), from the
same series.

- Throughput over time is binned by **event time**: what the producer sent (from its manifest,
  when there is one) against what was stored. Binning by commit time would follow the uneven
  micro-batches instead of the load.
- The end-to-end latency distribution counts **every** on-time stored event, in bins a tenth of
  a decade wide; nothing is sampled.
- The stage breakdown is measured on on-time events only. Lateness injected by the generator is
  its own chart (how many events, by how much), never a stage's cost.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from monitoring.report import Report
from schemas.quality import LATE_MIN_S

MAX_BINS = 150
COLORS = {"produced": "#9c755f", "stored": "#3b75af", "avg": "#3b75af", "p95": "#f28e2b"}


@dataclass
class Throughput:
    bin_s: int
    times: list[datetime]
    produced: list[float] | None  # events/s per bin, or None without a manifest
    stored: list[float]


def throughput(report: Report, produced: Counter | None) -> Throughput:
    """Both series on one grid of bins (1 s, or wider so there are at most MAX_BINS)."""
    seconds = set(report.stored_timeline) | set(produced or ())
    if not seconds:
        return Throughput(1, [], [] if produced is not None else None, [])
    first, last = min(seconds), max(seconds)
    bin_s = max(1, -(-(last - first + 1) // MAX_BINS))
    edges = range(first - first % bin_s, last + 1, bin_s)

    def per_second(counts: dict) -> list[float]:
        bins: Counter[int] = Counter()
        for second, n in counts.items():
            bins[second - second % bin_s] += n
        return [bins.get(edge, 0) / bin_s for edge in edges]

    return Throughput(
        bin_s,
        [datetime.fromtimestamp(edge, UTC) for edge in edges],
        per_second(produced) if produced is not None else None,
        per_second(report.stored_timeline),
    )


def e2e_series(report: Report) -> tuple[list[float], list[int]]:
    """(bin's lower edge in ms, events) of the latency histogram."""
    return [10**b for b, _ in report.e2e_histogram], [n for _, n in report.e2e_histogram]


def titles(report: Report, with_produced: bool) -> dict[str, str]:
    return {
        "throughput": (f"Throughput by event time ({'produced vs ' if with_produced else ''}stored, events/s)"),
        "e2e": f"End-to-end latency: all {report.on_time_events:,} on-time stored events (not a sample)",
        "stages": "What each stage costs (on-time events, ms, log scale)",
        "lateness": (
            f"Lateness injected by the generator: {report.made_late:,} events made late on purpose, by how much (s)"
        ),
        "quality": "Data quality: quarantined records by category and rule",
    }


# HTML ------------------------------------------------------------------------------------------
def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _plain(value: object) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _as_written(value: object) -> str:
    """A parameter as a person would write it on the command line: yes/no, a comma-separated list, 5,000."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):  # as its flag takes it: 5000:60,20000:60
        items = (":".join(map(_plain, v)) if isinstance(v, (list, tuple)) else _plain(v) for v in value)
        return ",".join(items) or "none"
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _parameters(manifest) -> list[list[str]]:
    options = ((manifest.journal or {}).get("options") if manifest is not None else None) or {}
    rows = [
        [name.replace("_", " "), _as_written(value)]
        for name, value in options.items()
        if value is not None and not isinstance(value, dict)
    ]
    for name, value in options.get("faults", {}).items():
        rows.append([f"bad-data ratio: {name.rstrip('_')}", _as_written(value)])
    if manifest is not None and "run_id" not in options:
        rows.append(["run id", manifest.run_id])
    return rows


def write_html(report: Report, path: Path, manifest=None, summary: dict | None = None) -> Path:
    """One self-contained file (plotly.js inline): the seed's tables filled from the run, and the charts."""
    import plotly.graph_objects as go
    from plotly.offline import get_plotlyjs

    produced = manifest.timeline if manifest is not None and manifest.timeline else None
    t = throughput(report, produced)
    name = titles(report, produced is not None)
    layout = {"template": "plotly_white", "height": 360, "margin": {"l": 60, "r": 20, "t": 50, "b": 50}}
    figures = {}

    fig = go.Figure(
        layout={
            **layout,
            "title": name["throughput"],
            "yaxis_title": "events/s",
            "xaxis_title": f"event time (UTC, {t.bin_s} s bins)",
        }
    )
    if t.produced is not None:
        fig.add_scatter(x=t.times, y=t.produced, name="produced", mode="lines", line_color=COLORS["produced"])
    fig.add_scatter(x=t.times, y=t.stored, name="stored", mode="lines", line_color=COLORS["stored"])
    figures["throughput"] = fig

    x, y = e2e_series(report)
    fig = go.Figure(
        layout={
            **layout,
            "title": name["e2e"],
            "xaxis_type": "log",
            "yaxis_title": "events",
            "xaxis_title": "ms from event_time to commit (bins of 1/10 decade)",
        }
    )
    fig.add_bar(x=x, y=y, name="events", marker_color=COLORS["stored"])
    figures["e2e"] = fig

    stages = [s for s in report.stages if s != "end_to_end"] + (["end_to_end"] if "end_to_end" in report.stages else [])
    fig = go.Figure(
        layout={
            **layout,
            "title": name["stages"],
            "xaxis_type": "log",
            "barmode": "group",
            "xaxis_title": "ms",
            "yaxis_autorange": "reversed",
        }
    )
    for stat in ("avg", "p95"):
        fig.add_bar(
            y=stages,
            x=[max(report.stages[s][stat], 1e-3) for s in stages],
            orientation="h",
            name="average" if stat == "avg" else "p95",
            marker_color=COLORS[stat],
        )
    figures["stages"] = fig

    fig = go.Figure(
        layout={
            **layout,
            "title": name["lateness"],
            "yaxis_title": "events",
            "xaxis_title": f"event_time before its send (s, 5 s bins; at least {LATE_MIN_S:g} s)",
        }
    )
    fig.add_bar(
        x=[b for b, _ in report.lateness],
        y=[n for _, n in report.lateness],
        name="late events",
        marker_color=COLORS["p95"],
    )
    figures["lateness"] = fig

    fig = go.Figure(
        layout={
            **layout,
            "title": name["quality"],
            "barmode": "stack",
            "xaxis_title": "records",
            "height": max(360, 60 + 28 * sum(len(r) for r in report.quality_by_rule.values())),
        }
    )
    for category, rules in report.quality_by_rule.items():
        fig.add_bar(y=[f"{category}: {rule}" for rule in rules], x=list(rules.values()), orientation="h", name=category)
    figures["quality"] = fig

    tot, e2e = report.totals, report.stages.get("end_to_end", {})
    key_rows = [
        ["records in", f"{tot['records']:,}"],
        ["stored", f"{tot['stored']:,}"],
        ["quarantined", f"{tot['quarantined']:,}"],
        ["duplicates dropped", f"{tot['duplicates']:,}"],
        ["late on arrival", f"{tot['late']:,}"],
        ["made late on purpose", f"{report.made_late:,}"],
        ["micro-batches", f"{tot['batches']:,}"],
        ["events/s", f"{tot['events_per_second']:,.0f}"],
        ["e2e p95", f"{e2e.get('p95', 0) / 1000:.2f} s"],
    ]
    if summary:
        key_rows[:0] = [
            ["produced (Kafka offsets)", f"{summary['produced']:,}"],
            ["lost", f"{summary['lost']:,}"],
            ["duplicates stored", f"{summary['duplicates_in_db']:,}"],
        ]
    latency_rows = [
        [s, f"{v['avg'] / 1000:.3f} s", f"{v['p95'] / 1000:.3f} s", f"{v['max'] / 1000:.3f} s"]
        for s, v in report.stages.items()
    ]
    quality_rows = [
        [c, f"{q['checked']:,}", f"{q['failed']:,}", f"{q['success_rate']:.2%}"] for c, q in report.quality.items()
    ]
    query_rows = [[n, f"{q['avg']:.1f} ms", f"{q['p95']:.1f} ms", str(q["runs"])] for n, q in report.queries.items()]
    params = _parameters(manifest)
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    charts = "\n".join(
        f'<section class="chart">{fig.to_html(full_html=False, include_plotlyjs=False, div_id=key)}</section>'
        for key, fig in figures.items()
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>shopstream report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.8em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.tables {{ display: flex; flex-wrap: wrap; gap: 2em; }}
</style>
<script>{get_plotlyjs()}</script></head>
<body>
<h1>shopstream report</h1>
<p>What the sink committed in the last {report.minutes:g} minutes, measured from the database; made {made}.
Stage latency is measured on on-time events; lateness the generator injected on purpose is its own chart.</p>
<div class="tables">
<div><h2>Key indicators</h2>{_table(["indicator", "value"], key_rows)}</div>
<div><h2>Latency breakdown</h2>{_table(["stage", "average", "95th percentile", "maximum"], latency_rows)}</div>
<div><h2>Validation performance</h2>{
        _table(["validation type", "records checked", "failed", "success rate"], quality_rows)
    }</div>
<div><h2>Query performance</h2>{_table(["query type", "average", "95th percentile", "runs"], query_rows)}</div>
<div><h2>Run parameters</h2>{
        _table(["parameter", "value"], params)
        if params
        else "<p>No producer manifest was given (<code>--manifest</code>).</p>"
    }</div>
</div>
{charts}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path


# PNG -------------------------------------------------------------------------------------------
def write_png(report: Report, path: Path, manifest=None) -> Path:
    """The same four charts as the page's first four, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    produced = manifest.timeline if manifest is not None and manifest.timeline else None
    t = throughput(report, produced)
    name = titles(report, produced is not None)
    fig, axes = plt.subplots(2, 2, figsize=(15, 8.5))
    ax = axes[0][0]
    if t.produced is not None:
        ax.plot(t.times, t.produced, label="produced", color=COLORS["produced"])
    ax.plot(t.times, t.stored, label="stored", color=COLORS["stored"])
    ax.legend()
    ax.set(title=name["throughput"], ylabel="events/s", xlabel=f"event time (UTC, {t.bin_s} s bins)")
    ax.tick_params(axis="x", labelrotation=20)
    ax = axes[0][1]
    x, y = e2e_series(report)
    if x:
        ax.bar(x, y, width=[v * (10**0.1 - 1) for v in x], align="edge", color=COLORS["stored"])
        ax.set_xscale("log")
    ax.set(title=name["e2e"], xlabel="ms from event_time to commit", ylabel="events")
    ax = axes[1][0]
    stages = list(report.stages)
    ypos = range(len(stages))
    ax.barh(
        [i - 0.2 for i in ypos],
        [max(report.stages[s]["avg"], 1e-3) for s in stages],
        height=0.4,
        label="average",
        color=COLORS["avg"],
    )
    ax.barh(
        [i + 0.2 for i in ypos],
        [max(report.stages[s]["p95"], 1e-3) for s in stages],
        height=0.4,
        label="p95",
        color=COLORS["p95"],
    )
    ax.set_yticks(list(ypos), stages)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.legend()
    ax.set(title=name["stages"], xlabel="ms")
    ax = axes[1][1]
    ax.bar(
        [b for b, _ in report.lateness], [n for _, n in report.lateness], width=4.5, align="edge", color=COLORS["p95"]
    )
    ax.set(title=name["lateness"].replace(", by", ",\nby"), xlabel="event_time before its send (s)", ylabel="events")
    for a in axes.flat:
        a.title.set_fontsize(10)
    fig.suptitle(f"shopstream: last {report.minutes:g} minutes, {report.totals['records']:,} records")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
