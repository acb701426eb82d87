"""`shopstream report`: the seed report's tables, measured live from the database.

Scope: everything the sink committed in the last ``minutes``. Latency comes from the
stored rows' own timestamps and their ledger rows, like the run summary; database
query performance is timed here, now, against the stored data.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from core.database import REFRESH, ROLLUPS, connect
from core.settings import Settings
from monitoring.summary import STAGE_ORDER, stage_latencies
from schemas.quality import CATEGORIES, LATE_MIN_S

# A fact row carries the id of the batch that stored it, but batch ids restart at 0 with
# every new checkpoint (and each pipeline has its own). A fact belongs to the ledger row
# with its batch id whose offset range holds the fact's Kafka coordinates: from the end
# offsets of the pipeline's previous commit (a new checkpoint resumes from there, see
# core.ledger.LATEST_OFFSETS) to its own.
WINDOW_ROWS = """
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
)
SELECT f.event_time, f.produced_at, f.kafka_time, r.picked_up_at, r.started_at, r.committed_at
FROM stored f JOIN ranges r
  ON r.batch_id = f.batch_id AND r.topic = f.kafka_topic AND r.part = f.kafka_partition
 AND f.kafka_offset >= r.start_off AND f.kafka_offset < r.end_off
"""
# On time: not late on arrival, and not made late on purpose by the generator (schemas.quality.LATE_MIN_S).
WINDOW_FACTS = f"""
SELECT * FROM ({WINDOW_ROWS}) w
WHERE kafka_time - event_time <= make_interval(secs => %(late_s)s)
  AND coalesce(produced_at - event_time < make_interval(secs => %(late_min_s)s), true)
"""
STAGES = f"""
WITH f AS ({WINDOW_FACTS}), s AS ({stage_latencies("f")})
SELECT stage, count(*), avg(ms), percentile_cont(0.95) WITHIN GROUP (ORDER BY ms), max(ms)
FROM s WHERE ms IS NOT NULL GROUP BY stage
"""
# Every on-time stored event, in bins a tenth of a decade wide (log10 of ms): not a sample.
E2E_HISTOGRAM = f"""
SELECT floor(log(greatest(ms, 1)) * 10) / 10 AS b, count(*)
FROM (SELECT extract(epoch FROM committed_at - event_time) * 1000 AS ms FROM ({WINDOW_FACTS}) f) h
GROUP BY 1 ORDER BY 1
"""
STORED_BY_EVENT_TIME = f"""
SELECT floor(extract(epoch FROM event_time))::bigint, count(*) FROM ({WINDOW_ROWS}) w GROUP BY 1 ORDER BY 1
"""
# The lag the generator gave events on purpose: event_time that far before their own send.
LATENESS = f"""
SELECT floor(lag_s / 5) * 5, count(*)
FROM (SELECT extract(epoch FROM produced_at - event_time) AS lag_s FROM ({WINDOW_ROWS}) w
      WHERE produced_at - event_time >= make_interval(secs => %(late_min_s)s)) l
GROUP BY 1 ORDER BY 1
"""
TOTALS = """
SELECT coalesce(sum(records_in), 0), coalesce(sum(stored), 0), coalesce(sum(quarantined), 0),
       coalesce(sum(duplicates), 0), coalesce(sum(late), 0), count(*),
       extract(epoch FROM max(committed_at) - min(picked_up_at))
FROM sink_ledger WHERE committed_at > now() - (%(minutes)s * interval '1 minute')
"""
QUALITY = """
SELECT category, rule, count(*) FROM quarantine WHERE quarantined_at > now() - (%(minutes)s * interval '1 minute')
GROUP BY 1, 2 ORDER BY 1, 2
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
    quality_by_rule: dict = field(default_factory=dict)  # {category: {rule: n}}
    stored_timeline: dict = field(default_factory=dict)  # {Unix second of event_time: stored events}
    e2e_histogram: list = field(default_factory=list)  # [(log10 ms, on-time events)]
    lateness: list = field(default_factory=list)  # [(lag s, 5 s wide bin), events made late]

    @property
    def on_time_events(self) -> int:
        return sum(n for _, n in self.e2e_histogram)

    @property
    def made_late(self) -> int:
        return sum(n for _, n in self.lateness)


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
    """Everything the sink committed in the last ``minutes``, measured from the database."""
    conn = connect(settings, "writer")
    params = {"minutes": minutes, "late_s": late_s, "late_min_s": LATE_MIN_S}
    try:
        with conn.cursor() as cur:
            cur.execute(TOTALS, params)
            records, stored, quarantined, duplicates, late, batches, span = cur.fetchone() or (0,) * 7
            cur.execute(STAGES, params)
            stages = {
                stage: {"n": n, "avg": float(a), "p95": float(p), "max": float(m)}
                for stage, n, a, p, m in cur.fetchall()
            }
            cur.execute(QUALITY, params)
            by_rule: dict[str, dict[str, int]] = {}
            for category, rule, n in cur.fetchall():
                by_rule.setdefault(category, {})[rule] = n
            cur.execute(STORED_BY_EVENT_TIME, params)
            stored_timeline = {int(second): int(n) for second, n in cur.fetchall()}
            cur.execute(E2E_HISTOGRAM, params)
            histogram = [(float(b), int(n)) for b, n in cur.fetchall()]
            cur.execute(LATENESS, params)
            lateness = [(float(b), int(n)) for b, n in cur.fetchall()]
            queries = {name: _time(cur, sql, query_runs) for name, sql in QUERY_BENCH.items()}
        conn.rollback()
        conn.autocommit = True
        with conn.cursor() as cur:  # CONCURRENTLY needs autocommit
            refresh = [_time(cur, REFRESH[view], 3) for view in ROLLUPS]
            queries["Materialized View Refresh"] = {
                "avg": statistics.fmean(r["avg"] for r in refresh),
                "p95": max(r["p95"] for r in refresh),
                "runs": 3 * len(refresh),
            }
    finally:
        conn.close()
    totals = {
        "records": records,
        "stored": stored,
        "quarantined": quarantined,
        "duplicates": duplicates,
        "late": late,
        "batches": batches,
        "events_per_second": (records / float(span)) if span else 0.0,
    }
    failed = {c: sum(by_rule.get(c, {}).values()) for c in CATEGORIES}
    quality = {
        c: {"checked": records, "failed": failed[c], "success_rate": 1 - failed[c] / records if records else 1.0}
        for c in CATEGORIES
    }
    ordered = {s: stages[s] for s in STAGE_ORDER if s in stages}
    return Report(minutes, totals, ordered, quality, queries, by_rule, stored_timeline, histogram, lateness)


def live_metrics(settings: Settings) -> dict | None:
    """p95 per stage and throughput from Prometheus, or None when it is not reachable."""
    import httpx

    queries = {"p95": "stage:shopstream_stage_latency_seconds:p95", "rate": "stage:shopstream_stage_events:rate1m"}
    out: dict = {}
    try:
        for key, query in queries.items():
            answer = httpx.get(
                f"{settings.prometheus_endpoint}/api/v1/query", params={"query": query}, timeout=5
            ).json()
            out[key] = {r["metric"].get("stage", "?"): float(r["value"][1]) for r in answer["data"]["result"]}
    except (httpx.HTTPError, KeyError, ValueError):
        return None
    return out
