"""Quarantined records, republished to the dead-letter topic with their reason.

Published inside the sink transaction, before COMMIT: a crash after publishing and
before committing replays the batch and publishes again, so the topic is
at-least-once; its headers (source topic, partition, offset) identify repeats. The
PostgreSQL quarantine table is the exactly-once record.
"""

from __future__ import annotations

import csv
import io
import logging

from core import kafka
from core.settings import Settings
from streaming.exceptions import DeadLetterUnavailable

log = logging.getLogger(__name__)


def parse_quarantine(lines: bytes) -> list[list[str]]:
    """Rows of the quarantine CSV (columns as streaming.transform.QUARANTINE_COLUMNS)."""
    return list(csv.reader(io.StringIO(lines.decode())))


class DeadLetterPublisher:
    def __init__(self, settings: Settings, topic: str):
        self.topic = topic
        self.producer = kafka.producer(settings, {"enable.idempotence": True, "acks": "all", "linger.ms": 5,
                                                  "compression.type": "lz4"}, logger=logging.getLogger("librdkafka"))

    def publish(self, rows: list[list[str]], timeout: float = 30.0) -> None:
        failures: list[str] = []

        def on_delivery(err, msg):
            if err is not None:
                failures.append(err.str())

        for topic, partition, offset, _kafka_time, category, rule, message, event_id, raw in rows:
            headers = [("source_topic", topic.encode()), ("source_partition", partition.encode()),
                       ("source_offset", offset.encode()), ("category", category.encode()),
                       ("rule", rule.encode()), ("message", message.encode()[:1000])]
            if event_id:
                headers.append(("event_id", event_id.encode()))
            self.producer.produce(self.topic, bytes.fromhex(raw[2:]), key=f"{topic}/{partition}/{offset}",
                                  headers=headers, on_delivery=on_delivery)
        remaining = self.producer.flush(timeout)
        if remaining or failures:
            raise DeadLetterUnavailable(f"dead-letter topic {self.topic}: {remaining} undelivered, "
                                 f"{len(failures)} failed ({failures[:1]}); the batch will be retried")
