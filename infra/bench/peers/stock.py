"""Accounting for the peers with stock sinks (Flink SQL's JDBC sink, Kafka Connect's JDBC sink connector).

A stock sink writes no ledger row and no batch id, so those peers write into copies of our tables in a schema of
their own, ``peer``, in the level's sandbox database. Each copy has the original's columns, defaults and indexes
(the same work per row as ours), and adds what the measurement needs:

- ``stored_at`` (``clock_timestamp()`` at the insert): the commit time the latency figures use. It is the
  insert's time, a few milliseconds before its commit; an upsert that finds the row leaves it as it was, so a
  re-delivered event keeps its first time;
- ``produced_at_us``: the producer's ``produced_at`` header as it is (microseconds), since a stock sink cannot
  convert it; ``produced_at`` is computed from it;
- columns only our job fills (``batch_id``, a click's ``schema_version``, an order's ``line_count``) may be null.

``peer.quarantine`` takes what a peer's validation rejects, keyed like ours. The drain is "every offset present":
each partition's stored rows (facts and quarantine, distinct by their Kafka coordinates, since an upsert keeps
one row per key) reach its log end. The summary reads these tables (``RunScope.accounting == "stored"``): the
stages between Kafka and the commit are one (``kafka_time`` → ``stored_at``), and the end-to-end latency is
``stored_at - event_time``.
"""

from __future__ import annotations

from core.database import connect
from core.kafka import Offsets
from core.settings import Settings

SCHEMA = "peer"

TABLES = """
CREATE SCHEMA IF NOT EXISTS peer;
CREATE TABLE peer.clickstream_events (LIKE public.clickstream_events INCLUDING DEFAULTS INCLUDING INDEXES);
CREATE TABLE peer.orders (LIKE public.orders INCLUDING DEFAULTS INCLUDING INDEXES);
CREATE TABLE peer.order_lines (LIKE public.order_lines INCLUDING DEFAULTS INCLUDING INDEXES);
ALTER TABLE peer.clickstream_events ALTER schema_version DROP NOT NULL;
ALTER TABLE peer.orders ALTER line_count DROP NOT NULL;
CREATE TABLE peer.quarantine (
    source_topic     text        NOT NULL,
    source_partition integer     NOT NULL,
    source_offset    bigint      NOT NULL,
    kafka_time       timestamptz NOT NULL,
    category         text        NOT NULL,
    rule             text        NOT NULL,
    event_id         text,
    stored_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (source_topic, source_partition, source_offset)
);
GRANT USAGE ON SCHEMA peer TO {reader}, {writer};
GRANT SELECT ON ALL TABLES IN SCHEMA peer TO {reader};
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA peer TO {writer};
"""

FACT_COLUMNS = """
ALTER TABLE peer.{table}
    ALTER batch_id DROP NOT NULL,
    DROP COLUMN produced_at,
    ADD COLUMN produced_at_us bigint,
    ADD COLUMN produced_at timestamptz GENERATED ALWAYS AS (to_timestamp(produced_at_us / 1e6)) STORED,
    ADD COLUMN stored_at timestamptz NOT NULL DEFAULT clock_timestamp();
"""

# Every partition's stored rows, each Kafka record once (an upsert keeps one row per key; a fact and a quarantine
# row never share coordinates).
STORED_COUNTS = """
SELECT kafka_topic, kafka_partition, count(*) FROM (
    SELECT kafka_topic, kafka_partition FROM peer.clickstream_events
    UNION ALL SELECT kafka_topic, kafka_partition FROM peer.orders
    UNION ALL SELECT source_topic, source_partition FROM peer.quarantine
) stored GROUP BY 1, 2
"""


def create_tables(settings: Settings) -> None:
    """The ``peer`` schema and its tables in the sandbox's database (run as the admin: the writer may not create
    schemas)."""
    conn = connect(settings, "admin", settings.postgres_db)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(TABLES.format(reader=settings.reader_user, writer=settings.writer_user))
            for table in ("clickstream_events", "orders"):
                cur.execute(FACT_COLUMNS.format(table=table))
    finally:
        conn.close()


def stored_offsets(cur) -> Offsets:
    """{topic: {partition: rows stored}}: on fresh topics read from offset 0, the next offset once every record
    before it is stored."""
    cur.execute(STORED_COUNTS)
    found: Offsets = {}
    for topic, partition, n in cur.fetchall():
        found.setdefault(topic, {})[int(partition)] = n
    return found
