"""`shopstream report`: the seed report's tables, measured live from the database.

Scope: everything the sink committed in the last ``minutes``. Latency comes from the
stored rows' own timestamps and their ledger rows, like the run summary; database
query performance is timed here, now, against the stored data.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

from core.database import REFRESH, ROLLUPS
from core.exceptions import ServiceUnhealthy
from core.settings import Settings
from monitoring.summary import STAGE_ORDER
from schemas.quality import CATEGORIES

# A fact row carries the id of the batch that stored it, but batch ids restart at 0 with
# every new checkpoint (and each pipeline has its own). A fact belongs to the ledger row
# with its batch id whose offset range holds the fact's Kafka coordinates: from the end
# offsets of the pipeline's previous commit (a new checkpoint resumes from there, see
# core.ledger.LATEST_OFFSETS) to its own.
WINDOW_FACTS = """
WITH batches AS (
    SELECT batch_id, picked_up_at, started_at, committed_at, end_offsets,
           lag(end_offsets) OVER (PARTITION BY split_part(pipeline, ':', 1) ORDER BY committed_at) AS start_offsets
    FROM sink_ledger WHERE committed_at > now() - ((%(minutes)s + 60) * interval '1 minute')
),
ranges AS (
    SELECT b.batch_id, b.picked_up_at, b.started_at, b.committed_at, t.key AS topic, p.key::int AS part,
           coalesce((b.start_offsets -> t.key ->> p.key)::bigint, 0) AS start_off, p.value::bigint AS end_off
    FROM batches b, jsonb_each(b.end_offsets) t, jsonb_each_text(t.value) p
    WHERE b.committed_at > now() - (%(minutes)s * interval '1 minute')
),
stored AS (
    SELECT event_time, produced_at, kafka_time, batch_id, kafka_topic, kafka_partition, kafka_offset
    FROM clickstream_events WHERE event_time > now() - ((%(minutes)s + 60) * interval '1 minute')
    UNION ALL
    SELECT event_time, produced_at, kafka_time, batch_id, kafka_topic, kafka_partition, kafka_offset
    FROM orders WHERE event_time > now() - ((%(minutes)s + 60) * interval '1 minute')
),
facts AS (
    SELECT f.event_time, f.produced_at, f.kafka_time, r.picked_up_at, r.started_at, r.committed_at
    FROM stored f JOIN ranges r
      ON r.batch_id = f.batch_id AND r.topic = f.kafka_topic AND r.part = f.kafka_partition
     AND f.kafka_offset >= r.start_off AND f.kafka_offset < r.end_off
)
SELECT * FROM facts WHERE kafka_time - event_time <= make_interval(secs => %(late_s)s)
"""
STAGES = f"""
WITH f AS ({WINDOW_FACTS}), s AS (
    SELECT 'generate' stage, extract(epoch FROM produced_at - event_time) * 1000 ms FROM f
    UNION ALL SELECT 'produce', extract(epoch FROM kafka_time - produced_at) * 1000 FROM f
    UNION ALL SELECT 'queue', extract(epoch FROM picked_up_at - kafka_time) * 1000 FROM f
    UNION ALL SELECT 'process', extract(epoch FROM started_at - picked_up_at) * 1000 FROM f
    UNION ALL SELECT 'db_write', extract(epoch FROM committed_at - started_at) * 1000 FROM f
    UNION ALL SELECT 'end_to_end', extract(epoch FROM committed_at - event_time) * 1000 FROM f)
SELECT stage, count(*), avg(ms), percentile_cont(0.95) WITHIN GROUP (ORDER BY ms), max(ms)
FROM s WHERE ms IS NOT NULL GROUP BY stage
"""
E2E_SAMPLE = f"SELECT extract(epoch FROM committed_at - event_time) FROM ({WINDOW_FACTS}) f ORDER BY random() LIMIT 20000"
THROUGHPUT = """
SELECT date_trunc('second', committed_at) - make_interval(secs => extract(second FROM committed_at)::int %% 10) AS t,
       sum(records_in), sum(stored), sum(quarantined)
FROM sink_ledger WHERE committed_at > now() - (%(minutes)s * interval '1 minute') GROUP BY 1 ORDER BY 1
"""
TOTALS = """
SELECT coalesce(sum(records_in), 0), coalesce(sum(stored), 0), coalesce(sum(quarantined), 0),
       coalesce(sum(duplicates), 0), coalesce(sum(late), 0), count(*),
       extract(epoch FROM max(committed_at) - min(picked_up_at))
FROM sink_ledger WHERE committed_at > now() - (%(minutes)s * interval '1 minute')
"""
QUALITY = """
SELECT category, count(*) FROM quarantine WHERE quarantined_at > now() - (%(minutes)s * interval '1 minute')
GROUP BY 1
"""
QUERY_BENCH = {
    "Simple Select": "SELECT * FROM clickstream_events WHERE customer_id = (SELECT customer_id FROM customers "
                     "ORDER BY random() LIMIT 1) ORDER BY event_time DESC LIMIT 50",
    "Aggregation": "SELECT event_type, count(*) FROM clickstream_events "
                   "WHERE event_time > now() - interval '1 hour' GROUP BY 1",
    "Join Operations": "SELECT p.category, sum(l.line_total), count(DISTINCT c.customer_id) FROM order_lines l "
                       "JOIN orders o USING (event_time, event_id) JOIN products p USING (product_id) "
                       "JOIN customers c ON c.customer_id = o.customer_id "
                       "WHERE l.event_time > now() - interval '1 hour' GROUP BY 1",
}


@dataclass
class Report:
    minutes: float
    totals: dict
    stages: dict
    quality: dict
    queries: dict
    throughput: list = field(default_factory=list)
    e2e_sample: list = field(default_factory=list)


def _time(cur, sql: str, runs: int) -> dict:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        cur.execute(sql)
        if cur.description:
            cur.fetchall()
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {"avg": statistics.fmean(timings), "p95": timings[max(0, int(0.95 * len(timings)) - 1)], "runs": runs}


def build(settings: Settings, minutes: float = 60.0, late_s: float = 5.0, query_runs: int = 20) -> Report:
    try:
        conn = psycopg2.connect(settings.postgres_dsn("writer"))
    except psycopg2.OperationalError:
        raise ServiceUnhealthy(f"PostgreSQL at {settings.host}:{settings.postgres_port} is not running, so there is "
                               f"nothing to report: run `shopstream up` (and `shopstream run` for data)") from None
    params = {"minutes": minutes, "late_s": late_s}
    try:
        with conn.cursor() as cur:
            cur.execute(TOTALS, params)
            records, stored, quarantined, duplicates, late, batches, span = cur.fetchone()
            cur.execute(STAGES, params)
            stages = {stage: {"n": n, "avg": float(a), "p95": float(p), "max": float(m)}
                      for stage, n, a, p, m in cur.fetchall()}
            cur.execute(QUALITY, params)
            failed = dict(cur.fetchall())
            cur.execute(THROUGHPUT, params)
            throughput = [(t, int(r), int(s), int(q)) for t, r, s, q in cur.fetchall()]
            cur.execute(E2E_SAMPLE, params)
            sample = [float(r[0]) for r in cur.fetchall()]
            queries = {name: _time(cur, sql, query_runs) for name, sql in QUERY_BENCH.items()}
        conn.rollback()
        conn.autocommit = True
        with conn.cursor() as cur:  # CONCURRENTLY needs autocommit
            refresh = [_time(cur, REFRESH[view], 3) for view in ROLLUPS]
            queries["Materialized View Refresh"] = {"avg": statistics.fmean(r["avg"] for r in refresh),
                                                    "p95": max(r["p95"] for r in refresh), "runs": 3 * len(refresh)}
    finally:
        conn.close()
    totals = {"records": records, "stored": stored, "quarantined": quarantined, "duplicates": duplicates,
              "late": late, "batches": batches, "events_per_second": (records / float(span)) if span else 0.0}
    quality = {c: {"checked": records, "failed": failed.get(c, 0),
                   "success_rate": 1 - failed.get(c, 0) / records if records else 1.0} for c in CATEGORIES}
    ordered = {s: stages[s] for s in STAGE_ORDER if s in stages}
    return Report(minutes, totals, ordered, quality, queries, throughput, sample)


def live_metrics(settings: Settings) -> dict | None:
    """p95 per stage and throughput from Prometheus, or None when it is not reachable."""
    import httpx

    queries = {"p95": "stage:shopstream_stage_latency_seconds:p95",
               "rate": "stage:shopstream_stage_events:rate1m"}
    out: dict = {}
    try:
        for key, query in queries.items():
            answer = httpx.get(f"{settings.prometheus_url}/api/v1/query", params={"query": query}, timeout=5).json()
            out[key] = {r["metric"].get("stage", "?"): float(r["value"][1]) for r in answer["data"]["result"]}
    except (httpx.HTTPError, KeyError, ValueError):
        return None
    return out


def write_png(report: Report, path: Path) -> Path:
    """Three charts in one PNG: e2e latency distribution, throughput over time, stage breakdown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    ax = axes[0]
    if report.e2e_sample:
        ax.hist(report.e2e_sample, bins=40, color="#3b75af")
    ax.set(title="End-to-end latency distribution", xlabel="seconds (event_time → commit)", ylabel="events")
    ax = axes[1]
    if report.throughput:
        times = [t for t, *_ in report.throughput]
        ax.plot(times, [r / 10 for _, r, _, _ in report.throughput], label="records in")
        ax.plot(times, [s / 10 for _, _, s, _ in report.throughput], label="stored")
        ax.legend()
        fig.autofmt_xdate()
    ax.set(title="Throughput (10 s buckets)", ylabel="events/s")
    ax = axes[2]
    names = list(report.stages)
    ax.barh(names, [report.stages[n]["avg"] for n in names], label="average", color="#3b75af")
    ax.barh(names, [report.stages[n]["p95"] for n in names], label="p95", color="#f28e2b", alpha=0.5)
    ax.set_xscale("log")  # stages span microseconds to seconds
    ax.set(title="Latency by stage", xlabel="ms (log scale)")
    ax.legend()
    fig.suptitle(f"shopstream: last {report.minutes:g} minutes, {report.totals['records']:,} records")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
