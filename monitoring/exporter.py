"""The lag and database exporter: what no single stage can see by itself.

- consumer lag per topic and partition: log-end offset minus the sink ledger's newest
  committed offset (the ledger is the truth; the consumer group only mirrors it);
- how old each rollup is, and how many partitions each fact table has.
"""

from __future__ import annotations

import logging
import threading

import psycopg2

import schemas
from core import ledger
from core.database import connect
from core.exceptions import ShopstreamError
from core.kafka import OffsetProbe, Offsets
from core.metrics import Metrics, serve_metrics
from core.settings import Settings

log = logging.getLogger(__name__)

VIEW_AGES = "SELECT view_name, extract(epoch FROM clock_timestamp() - refreshed_at) FROM rollup_refreshes"
PARTITION_COUNTS = """
SELECT p.relname, count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname IN ('clickstream_events', 'orders', 'order_lines') GROUP BY 1
"""


def collect(
    settings: Settings,
    pipeline: str,
    metrics: Metrics,
    topics: list[str],
    probe: OffsetProbe,
    committed: Offsets,
) -> None:
    """One round. ``committed`` keeps the ledger's offsets from the last round that could read it: while
    PostgreSQL is away, lag still follows the log end (nothing can commit then), so it shows the backlog grow."""
    ends = probe.log_end_offsets(topics)
    try:
        with connect(settings, "reader") as conn, conn.cursor() as cur:
            fresh = ledger.latest_offsets(cur, pipeline)
            cur.execute(VIEW_AGES)
            ages = cur.fetchall()
            cur.execute(PARTITION_COUNTS)
            partitions = cur.fetchall()
        conn.close()
    except (psycopg2.Error, ShopstreamError):  # PostgreSQL away: lag still follows the log end
        _set_lag(metrics, ends, committed)
        raise
    committed.clear()
    committed.update(fresh)
    _set_lag(metrics, ends, committed)
    for view, age in ages:
        metrics.view_age.labels(view=view).set(float(age))
    for table, n in partitions:
        metrics.partitions.labels(table=table).set(n)


def _set_lag(metrics: Metrics, ends: Offsets, committed: Offsets) -> None:
    for topic, parts in ends.items():
        for partition, end in parts.items():
            lag = end - committed.get(topic, {}).get(partition, 0)
            metrics.consumer_lag.labels(topic=topic, partition=partition).set(max(lag, 0))


def run(
    settings: Settings,
    pipeline: str = "shopstream",
    interval_s: float = 5.0,
    stop: threading.Event | None = None,
    port: int | None = None,
) -> None:
    stop = stop or threading.Event()
    metrics = serve_metrics(
        port if port is not None else settings.exporter_metrics_port, (), "exporter_metrics_port", settings.metrics_bind
    )
    topics = list(schemas.event_topics(settings).values())
    committed: Offsets = {}
    with OffsetProbe(settings) as probe:
        while not stop.is_set():
            try:
                collect(settings, pipeline, metrics, topics, probe, committed)
            except Exception as exc:  # noqa: BLE001 - keep exporting; a scrape shows stale values, the log says why
                log.warning("exporter: %s", exc)
            stop.wait(interval_s)
