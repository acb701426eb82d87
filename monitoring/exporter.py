"""The lag and database exporter: what no single stage can see by itself.

- consumer lag per topic and partition: log-end offset minus the sink ledger's newest
  committed offset (the ledger is the truth; the consumer group only mirrors it);
- how old each rollup is, and how many partitions each fact table has.
"""

from __future__ import annotations

import logging
import threading

import psycopg2

from infra.settings import Settings
from monitoring.metrics import Metrics, serve_metrics
from streaming import sql
from streaming.sink import ledger_offsets

log = logging.getLogger(__name__)

VIEW_AGES = "SELECT view_name, extract(epoch FROM clock_timestamp() - refreshed_at) FROM rollup_refreshes"
PARTITION_COUNTS = """
SELECT p.relname, count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname IN ('clickstream_events', 'orders', 'order_lines') GROUP BY 1
"""


def collect(settings: Settings, pipeline: str, metrics: Metrics, topics: list[str]) -> None:
    from streaming.job import log_end_offsets

    ends = log_end_offsets(settings, topics)
    with psycopg2.connect(settings.postgres_dsn("reader")) as conn, conn.cursor() as cur:
        committed = ledger_offsets(cur, sql.LATEST_OFFSETS, pipeline)
        cur.execute(VIEW_AGES)
        ages = cur.fetchall()
        cur.execute(PARTITION_COUNTS)
        partitions = cur.fetchall()
    conn.close()
    for topic, parts in ends.items():
        for partition, end in parts.items():
            lag = end - committed.get(topic, {}).get(partition, 0)
            metrics.consumer_lag.labels(topic=topic, partition=partition).set(max(lag, 0))
    for view, age in ages:
        metrics.view_age.labels(view=view).set(float(age))
    for table, n in partitions:
        metrics.partitions.labels(table=table).set(n)


def run(settings: Settings, pipeline: str = "shopstream", interval_s: float = 5.0,
        stop: threading.Event | None = None, port: int | None = None) -> None:
    stop = stop or threading.Event()
    metrics = serve_metrics(port if port is not None else settings.exporter_metrics_port, (), "exporter_metrics_port")
    topics = list(settings.event_topics().values())
    while not stop.is_set():
        try:
            collect(settings, pipeline, metrics, topics)
        except (psycopg2.Error, Exception) as exc:  # keep exporting; a scrape shows stale values, the log says why
            log.warning("exporter: %s", exc)
        stop.wait(interval_s)
