"""The practical ceiling peer: a plain confluent-kafka consumer that decodes with
fastavro and COPYs into the same PostgreSQL schema through the same sink (ledger,
ON CONFLICT), with no validation. Offsets are committed to Kafka after each database
commit, so a restart replays at most one batch, which the ledger skips.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
import time

import schemas
from core import kafka
from core.settings import Settings
from producers.serialization import split_frame
from streaming.sink import PostgresSink
from streaming.transform import CLICK_FIELDS, ORDER_FIELDS, ORDER_TAIL_FIELDS

log = logging.getLogger(__name__)


def _writers(settings: Settings):
    """Topics, reader schemas and {schema id: (family, writer, version)}, as the Spark job loads them."""
    import fastavro

    from streaming.decode import load_writer_schemas

    ws = load_writer_schemas(settings)
    topics = {topic: family for family, topic in ws.topics.items()}
    readers = {family: schemas.latest(family).parsed for family in ws.topics}
    writers = {
        sid: (family, fastavro.parse_schema(json.loads(text)), ws.versions[sid])
        for family, by_id in ws.writers.items()
        for sid, text in by_id.items()
    }
    return topics, readers, writers


def run(settings: Settings, pipeline: str, stop: threading.Event, ready_file=None, batch_size: int = 20_000) -> None:
    import fastavro

    topics, readers, writers = _writers(settings)
    sink = PostgresSink(settings, pipeline)
    consumer = kafka.consumer(
        settings,
        pipeline,
        {"enable.auto.commit": False, "auto.offset.reset": "earliest", "fetch.max.bytes": 52_428_800},
        logger=logging.getLogger("librdkafka"),
    )
    consumer.subscribe(list(topics), on_assign=lambda *_: ready_file and ready_file.touch())
    batch_id = 0
    ends: dict[str, dict[str, int]] = {}  # every partition's position so far: the ledger row holds them all
    try:
        while not stop.is_set():
            messages = consumer.consume(batch_size, timeout=0.2)
            if not messages:
                continue
            picked_up = time.time()
            out = {k: io.StringIO() for k in ("click", "order", "line")}
            writer = {k: csv.writer(v, lineterminator="\n") for k, v in out.items()}
            for msg in messages:
                if msg.error():
                    continue
                ends.setdefault(msg.topic(), {})[str(msg.partition())] = msg.offset() + 1
                try:
                    schema_id, body = split_frame(msg.value())
                    family, writer_schema, version = writers[schema_id]
                    rec = fastavro.schemaless_reader(io.BytesIO(body), writer_schema, readers[family])
                except Exception:  # noqa: BLE001 - no validation: what does not decode is skipped
                    continue
                headers = dict(msg.headers() or [])
                produced = headers.get("produced_at")
                produced_at = (
                    time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(produced) / 1e6))
                    + f".{int(produced) % 1_000_000:06d}+00"
                    if produced
                    else None
                )
                kafka_time = msg.timestamp()[1] / 1000
                source = [
                    msg.topic(),
                    msg.partition(),
                    msg.offset(),
                    time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(kafka_time))
                    + f".{int(kafka_time * 1000) % 1000:03d}+00",
                    produced_at,
                ]  # then extra_fields: none
                if family == "clickstream":
                    writer["click"].writerow([rec[f] for f in CLICK_FIELDS] + [version] + source + [None])
                else:
                    writer["order"].writerow(
                        [rec[f] for f in ORDER_FIELDS]
                        + [len(rec["line_items"])]
                        + [rec[f] for f in ORDER_TAIL_FIELDS]
                        + source
                        + [None]
                    )
                    for n, li in enumerate(rec["line_items"], 1):
                        writer["line"].writerow(
                            [
                                rec["event_time"],
                                rec["event_id"],
                                n,
                                rec["order_id"],
                                li["product_id"],
                                li["category"],
                                li["quantity"],
                                li["unit_price"],
                                li["line_total"],
                            ]
                        )
            lines = {k: v.getvalue().encode() for k, v in out.items()}
            sink.write(batch_id, lines, ends, picked_up_at=picked_up)
            consumer.commit(asynchronous=False)
            batch_id += 1
    finally:
        consumer.close()
        sink.close()
