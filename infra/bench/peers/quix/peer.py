"""The Quix Streams peer: what a Python team would build instead of the Spark job.

Run by `shopstream bench e2e` with the interpreter of its own virtual environment
(``infra/bench/quix.py``): quixstreams 3.28 pins confluent-kafka below 2.13, so it
cannot share ours. This file therefore imports nothing from shopstream: the column
lists and the ledger statement come from the parent process, in the environment.

It is Quix's idiomatic shape: a StreamingDataFrame per topic, Quix's own Confluent Avro
deserializer (through the schema registry), ``apply`` to map each record to the same
rows our facts hold (orders expand into their lines), and Quix's ``PostgreSQLSink``
with ``on_conflict_do_nothing`` on the tables' primary keys. Quix sinks are
at-least-once (offsets are committed after the sink flushes); the conflict clause is
how it reaches the exactly-once bar for facts. No validation, no KPIs.

Two additions, neither for speed:
- the stock sink takes a batch's columns from its first row, and drops a row's None
  values before that, so a later row's value in a column the first row lacks would be
  lost (product_id after a page view, for one). The first row is padded with the
  batch's other columns;
- a ``sink_ledger`` row after each flushed batch (its own short transaction, just after
  Quix's): the batch id stamped on the fact rows; when the batch's last record reached
  the sink (so, as for a Spark micro-batch, waiting for the batch to fill counts as
  queueing); when the write began; the commit time; and every partition's end offset so
  far. The benchmark's latency and catch-up figures read it, as for the other systems.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import logging
import os
import time
from pathlib import Path

from quixstreams import Application, message_context
from quixstreams.models.serializers.avro import AvroDeserializer
from quixstreams.models.serializers.schema_registry import SchemaRegistryClientConfig
from quixstreams.sinks.community.postgresql import PostgreSQLSink

# From the parent process (infra/bench/quix.py): our column lists and ledger statement.
COLUMNS: dict[str, list[str]] = json.loads(os.environ.get("QUIX_PEER_COLUMNS", "{}"))
LEDGER = os.environ.get("QUIX_PEER_LEDGER_SQL", "")


class LedgerState:
    """Shared by the sinks of one pipeline: batch ids and every partition's end offset so far."""

    def __init__(self, pipeline: str):
        self.pipeline = pipeline
        self.batch_ids = itertools.count()
        self.ends: dict[str, dict[str, int]] = {}


class MeasuredPostgreSQLSink(PostgreSQLSink):
    def __init__(self, ledger: LedgerState, **kwargs):
        super().__init__(**kwargs)
        self.ledger = ledger
        self.last_added: dict[tuple[str, int], float] = {}

    def add(self, value, key, timestamp, headers, topic, partition, offset):
        self.last_added[(topic, partition)] = time.time()
        return super().add(
            value=value, key=key, timestamp=timestamp, headers=headers, topic=topic, partition=partition, offset=offset
        )

    def write(self, batch):
        batch_id = next(self.ledger.batch_ids)
        last = None
        for item in batch:
            if "kafka_offset" in item.value:  # the fact rows with lineage; order lines have none
                item.value["batch_id"] = batch_id
            last = item.offset
        picked_up = self.last_added.pop((batch.topic, batch.partition), time.time())
        started = time.time()
        super().write(batch)
        self.ledger.ends.setdefault(batch.topic, {})[str(batch.partition)] = last + 1
        with self._client, self._client.cursor() as cur:  # committed_at: clock_timestamp(), just after Quix's COMMIT
            cur.execute(
                LEDGER,
                (
                    self.ledger.pipeline,
                    batch_id,
                    json.dumps(self.ledger.ends),
                    batch.size,
                    batch.size,
                    0,
                    0,
                    0,
                    _ts(picked_up),
                    _ts(started),
                    False,
                ),
            )  # not a replay

    def _insert_rows(self, table_name, rows, pks=None):
        if rows:
            rows[0] = {column: rows[0].get(column) for column in dict.fromkeys(c for row in rows for c in row)}
        return super()._insert_rows(table_name, rows, pks)


def _ts(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def _lineage(timestamp: int, headers) -> dict:
    ctx = message_context()
    produced = dict(headers or []).get("produced_at")
    return {
        "kafka_topic": ctx.topic,
        "kafka_partition": ctx.partition,
        "kafka_offset": ctx.offset,
        "kafka_time": _ts(timestamp / 1000),
        "produced_at": _ts(int(produced) / 1e6) if produced else None,
    }


def click_row(value: dict, key, timestamp: int, headers) -> dict:
    return {
        **{f: value.get(f) for f in COLUMNS["clickstream"]},
        "schema_version": 2 if "campaign" in value else 1,
        **_lineage(timestamp, headers),
    }


def order_rows(value: dict, key, timestamp: int, headers) -> list[dict]:
    order = {
        **{f: value.get(f) for f in COLUMNS["orders"]},
        "line_count": len(value["line_items"]),
        **_lineage(timestamp, headers),
    }
    lines = [
        {
            "event_time": value["event_time"],
            "event_id": value["event_id"],
            "line_no": n,
            "order_id": value["order_id"],
            **li,
        }
        for n, li in enumerate(value["line_items"], 1)
    ]
    return [order, *lines]


class _Application(Application):
    """Touches the ready file once the consumer has its partitions."""

    ready_file: Path | None = None

    def _on_assign(self, consumer, topic_partitions):
        super()._on_assign(consumer, topic_partitions)
        if self.ready_file:
            self.ready_file.touch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", required=True, help="consumer group and ledger key")
    parser.add_argument("--click-topic", required=True)
    parser.add_argument("--order-topic", required=True)
    parser.add_argument("--ready-file", type=Path)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--commit-interval", type=float, default=0.5, help="seconds between checkpoints")
    args = parser.parse_args()
    if not (COLUMNS and LEDGER):
        parser.error("the column lists and ledger statement come from `shopstream bench e2e --systems quix`")
    kafka, registry, pg = (
        os.environ["QUIX_PEER_KAFKA"],
        os.environ["QUIX_PEER_REGISTRY"],
        json.loads(os.environ["QUIX_PEER_POSTGRES"]),
    )
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    app = _Application(
        broker_address=kafka,
        consumer_group=args.pipeline,
        auto_offset_reset="earliest",
        commit_interval=args.commit_interval,
        state_dir=args.state_dir,
        loglevel="WARNING",
        auto_create_topics=False,
        use_changelog_topics=False,
    )
    app.ready_file = args.ready_file
    avro = AvroDeserializer(schema_registry_client_config=SchemaRegistryClientConfig(url=registry))
    ledger = LedgerState(args.pipeline)

    def sink(table):
        return MeasuredPostgreSQLSink(
            ledger,
            table_name=table,
            schema_auto_update=False,
            include_metadata=False,
            on_conflict_do_nothing=True,
            **pg,
        )

    clicks = app.dataframe(app.topic(args.click_topic, value_deserializer=avro))
    clicks.apply(click_row, metadata=True).sink(sink("clickstream_events"))
    orders = app.dataframe(app.topic(args.order_topic, value_deserializer=avro))
    orders.apply(order_rows, metadata=True, expand=True).sink(
        sink(lambda item: "order_lines" if "line_no" in item.value else "orders")
    )
    app.run()


if __name__ == "__main__":
    main()
