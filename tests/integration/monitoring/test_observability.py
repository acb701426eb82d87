"""A short real pipeline run, then: every Grafana panel's query returns data from the real
Prometheus, the metrics agree with the stored rows, and the quality counters move by
exactly what was injected."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from db.migrate import migrate
from infra.orchestration.harness import PipelineRun
from infra.orchestration.processes import StreamProcess
from infra.runtime.services.postgres import create_database, drop_database
from infra.runtime.topics import ensure_topics, load_topic_specs
from monitoring import charts, exporter
from monitoring.live_view import GRAPHS, graph_url
from producers.options import FaultRatios, ProduceOptions
from streaming import lease
from tests.fixtures.browser import chromium_page
from tests.fixtures.dashboards import panel_queries
from tests.fixtures.pipeline import stream_options
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live_run(running_stack, tmp_path_factory):
    name = f"t{uuid.uuid4().hex[:10]}"
    settings = running_stack.model_copy(update={"topic_prefix": name, "postgres_db": f"test_{name}"})
    ensure_topics(settings, name, load_topic_specs())
    create_database(settings, settings.postgres_db)
    migrate(settings)
    options = stream_options(name, tmp_path_factory.mktemp("ckpt"))
    stop_exporter = threading.Event()
    threading.Thread(target=exporter.run, args=(settings, name, 2.0, stop_exporter), daemon=True).start()
    stream = StreamProcess(settings, options)
    stream.start()
    try:
        run = PipelineRun(settings, stream)
        manifest = run.produce(
            ProduceOptions(
                rate=800,
                duration_s=15,
                late_ratio=0.01,
                late_max_s=20,
                duplicate_ratio=0,
                run_id=name,
                faults=FaultRatios(schema=0.01, data_type=0.01, completeness=0.01, business_rules=0.02),
            ),
            metrics_port=settings.producer_metrics_port,
        ).manifest
        run.drain()
        summary = run.summary(manifest.unique_events)
        scraped_after = time.time() + 0.5

        def every_target_scraped_twice_since_the_run():  # so each rate() has its samples
            targets = httpx.get(f"{settings.prometheus_endpoint}/api/v1/targets", timeout=5).json()["data"]
            ours = [  # no standby driver runs here: its target is down, as it should be
                t
                for t in targets["activeTargets"]
                if t["labels"].get("component") and t["labels"].get("job") != "shopstream-standby"
            ]
            return ours and all(
                t["health"] == "up" and _epoch(t["lastScrape"]) > scraped_after + t_interval(t) for t in ours
            )

        wait_for(every_target_scraped_twice_since_the_run, 60, "two scrapes of every target after the run")
        stream_metrics = httpx.get(f"http://{settings.host}:{settings.stream_metrics_port}/metrics").text
        # The job's lease row while it runs: the lag its keeper renews it with comes from Spark's progress events.
        held = wait_for(lambda: lease.read(settings, name), 10, "the job's lease row")
        yield settings, manifest, summary, stream_metrics, held
    finally:
        stream.stop()
        stop_exporter.set()
        drop_database(settings, settings.postgres_db)


def _epoch(rfc3339: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def t_interval(target: dict) -> float:
    return float(target.get("scrapeInterval", "5s").rstrip("s"))


@pytest.mark.parametrize("name,expr", list(panel_queries()), ids=[n for n, _ in panel_queries()])
def test_every_dashboard_panel_returns_data(live_run, name, expr):
    settings = live_run[0]
    answer = httpx.get(f"{settings.prometheus_endpoint}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", answer
    assert answer["data"]["result"], f"{name}: `{expr}` returned no data"


@pytest.mark.parametrize("title", list(GRAPHS))
def test_every_live_view_graph_returns_data(live_run, title):
    """The ready-made queries `status` links on Prometheus's graph page (the live view without Docker)."""
    settings = live_run[0]
    answer = httpx.get(
        f"{settings.prometheus_endpoint}/api/v1/query", params={"query": GRAPHS[title]}, timeout=10
    ).json()
    assert answer["status"] == "success", answer
    assert answer["data"]["result"], f"{title}: `{GRAPHS[title]}` returned no data"
    # /graph sends Debian's build (no React UI) on to /classic/graph: the queries must survive the redirects
    page = httpx.get(graph_url(settings.prometheus_endpoint), timeout=10, follow_redirects=True)
    assert page.status_code == 200 and "g0.expr=stage" in str(page.url), page.url


def _samples(text: str, name: str) -> list:
    return [s for family in text_string_to_metric_families(text) for s in family.samples if s.name == name]


def test_every_stage_histogram_has_observations(live_run):
    settings, _, _, stream_metrics, _ = live_run
    producer_metrics = httpx.get(f"http://{settings.host}:{settings.producer_metrics_port}/metrics").text
    counts = {
        s.labels["stage"]: s.value
        for text in (producer_metrics, stream_metrics)
        for s in _samples(text, "shopstream_stage_latency_seconds_count")
    }
    assert set(counts) == {"generate", "produce", "queue", "process", "db_write", "end_to_end"}
    assert all(v > 0 for v in counts.values()), counts


def test_each_batchs_progress_reaches_the_phase_metrics_and_the_lease(live_run):
    """The progress bridge (streaming.job.ProgressBridge): Spark's phase durations per batch, and the lag, which
    decides when a standby may warm up. After the drain the job is caught up: lag 0, not unknown."""
    stream_metrics, held = live_run[3], live_run[4]
    phases = {
        s.labels["phase"]: s.value for s in _samples(stream_metrics, "shopstream_stream_batch_phase_seconds_count")
    }
    assert phases.get("addBatch", 0) > 0 and phases.get("walCommit", 0) > 0, phases
    assert held.lag_records == 0, held


def test_end_to_end_p95_from_metrics_agrees_with_sql(live_run):
    _, _, summary, stream_metrics, _ = live_run
    buckets = sorted(
        (float(s.labels["le"]), s.value)
        for s in _samples(stream_metrics, "shopstream_stage_latency_seconds_bucket")
        if s.labels["stage"] == "end_to_end"
    )
    total = buckets[-1][1]
    p95_bucket = next(le for le, n in buckets if n >= 0.95 * total)
    lower = max([le for le, _ in buckets if le < p95_bucket], default=0.0)
    sql_p95_s = summary.e2e_latency_ms["p95"] / 1000
    # the SQL value falls in the bucket the histogram puts its p95 in (or a neighbour)
    assert lower * 0.8 <= sql_p95_s <= p95_bucket * 1.25, (sql_p95_s, lower, p95_bucket)


def test_quality_counters_moved_by_exactly_what_was_injected(live_run):
    _, manifest, summary, stream_metrics, _ = live_run
    by_category: dict[str, float] = {}
    for s in _samples(stream_metrics, "shopstream_quality_records_total"):
        by_category[s.labels["category"]] = by_category.get(s.labels["category"], 0) + s.value
    expected = manifest.to_dict()["quality"]
    assert {c: int(by_category.get(c, 0)) for c in expected} == expected
    assert int(by_category["valid"]) == manifest.valid
    assert summary.lost == 0


def test_report_measures_the_live_run(live_run, tmp_path):
    from monitoring import report

    settings, manifest, summary, _, _ = live_run
    r = report.build(settings, minutes=30, query_runs=2)
    assert r.totals["records"] == summary.produced
    assert r.totals["stored"] == summary.stored
    assert sum(q["failed"] for q in r.quality.values()) == summary.quarantined
    assert set(r.stages) == {"generate", "produce", "queue", "process", "db_write", "end_to_end"}
    assert set(r.queries) == {"Simple Select", "Aggregation", "Join Operations", "Materialized View Refresh"}
    assert r.on_time_events + r.made_late == summary.stored  # the histogram holds every stored event
    png = charts.write_png(r, tmp_path / "report.png", manifest)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.live_metrics(settings)["p95"]


def test_the_html_report_loads_in_a_browser_with_every_chart_drawn(live_run, tmp_path):
    """Headless Chromium opens the self-contained page with the network cut: no console error, every chart
    drawn with data, and a screenshot of it."""
    from monitoring import report

    settings, manifest, summary, _, _ = live_run
    r = report.build(settings, minutes=30, query_runs=2)
    page_file = charts.write_html(r, tmp_path / "report.html", manifest, summary.to_dict())
    with chromium_page() as (page, errors):
        page.route(
            "**/*", lambda route: route.abort() if not route.request.url.startswith("file:") else route.continue_()
        )  # self-contained: nothing may come from the network
        page.goto(page_file.as_uri(), wait_until="load")
        drawn = page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => ({
            id: el.id, svg: el.querySelectorAll('.main-svg').length,
            points: el.data.reduce((n, t) => n + Math.max((t.x || []).length, (t.y || []).length), 0)}))""")
        page.screenshot(path=str(tmp_path / "report-page.png"), full_page=True)
        text = page.inner_text("body")
    assert errors == []
    assert [d["id"] for d in drawn] == ["throughput", "e2e", "stages", "lateness", "quality"]
    assert all(d["svg"] and d["points"] for d in drawn), drawn
    assert f"{summary.stored:,}" in text and "Run parameters" in text
    assert (tmp_path / "report-page.png").stat().st_size > 50_000


def test_report_against_a_stopped_stack_is_a_clear_message():
    import os
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "infra", "report"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SHOPSTREAM_POSTGRES_PORT": "1"},
    )
    assert out.returncode == 2
    assert "PostgreSQL at 127.0.0.1:1 is not reachable" in out.stderr and "shopstream up" in out.stderr
    assert "Traceback" not in out.stderr
