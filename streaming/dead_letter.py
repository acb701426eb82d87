"""Quarantined records, republished to the dead-letter topic with their reason, and sent back from it.

Published inside the sink transaction, before COMMIT: a crash after publishing and
before committing replays the batch and publishes again, so the topic is
at-least-once; its headers (source topic, partition, offset) identify repeats. The
PostgreSQL quarantine table is the exactly-once record.

`shopstream dead-letter redrive` reads the topic back (``read``), leaves out what is
resolved already, and publishes each record's original bytes to its source topic with a
``redrive_of`` header naming its first coordinates (``redrive``); the job then stores it
and resolves its quarantine row, or counts the failed attempt on that row (streaming.sink).
"""

from __future__ import annotations

import csv
import io
import logging
import time
import uuid
from dataclasses import dataclass
from typing import NamedTuple

from confluent_kafka import TopicPartition

from core import kafka
from core.database import connect
from core.exceptions import DependencyUnavailable
from core.settings import Settings
from streaming.exceptions import DeadLetterUnavailable

log = logging.getLogger(__name__)


class QuarantineRow(NamedTuple):
    """One row of the quarantine CSV the transformation writes (its fields are QUARANTINE_COLUMNS, checked by a
    unit test); values as text, as the CSV carries them to COPY."""

    source_topic: str
    source_partition: str
    source_offset: str
    kafka_time: str
    category: str
    rule: str
    message: str
    event_id: str
    raw: str  # the record's bytes as PostgreSQL's bytea hex: "\\x" then two digits a byte

    @property
    def source(self) -> tuple[str, str, str]:
        """(topic, partition, offset) as text: the quarantine's key, as the sink's RETURNING gives it."""
        return self.source_topic, self.source_partition, self.source_offset

    @property
    def value(self) -> bytes:
        return bytes.fromhex(self.raw[2:])

    @property
    def schema_id(self) -> int | None:
        """The Confluent framing's schema id (bytes 1-4), or None for a record too short to hold one."""
        return int(self.raw[4:12], 16) if len(self.raw) >= 12 else None


def parse_quarantine(lines: bytes) -> list[QuarantineRow]:
    """Rows of the quarantine CSV."""
    return [QuarantineRow._make(row) for row in csv.reader(io.StringIO(lines.decode()))]


class DeadLetterPublisher:
    def __init__(self, settings: Settings, topic: str):
        self.topic = topic
        self.producer = kafka.producer(
            settings,
            {"enable.idempotence": True, "acks": "all", "linger.ms": 5, "compression.type": "lz4"},
            logger=logging.getLogger("librdkafka"),
        )

    def publish(self, rows: list[QuarantineRow], timeout: float = 30.0) -> None:
        failures: list[str] = []

        def on_delivery(err, msg):
            if err is not None:
                failures.append(err.str())

        for row in rows:
            headers: list[tuple[str, str | bytes | None]] = [
                ("source_topic", row.source_topic.encode()),
                ("source_partition", row.source_partition.encode()),
                ("source_offset", row.source_offset.encode()),
                ("category", row.category.encode()),
                ("rule", row.rule.encode()),
                ("message", row.message.encode()[:1000]),
            ]
            if row.event_id:
                headers.append(("event_id", row.event_id.encode()))
            self.producer.produce(
                self.topic,
                row.value,
                key="/".join(row.source),
                headers=headers,
                on_delivery=on_delivery,
            )
        remaining = self.producer.flush(timeout)
        if remaining or failures:
            raise DeadLetterUnavailable(
                f"dead-letter topic {self.topic}: {remaining} undelivered, "
                f"{len(failures)} failed ({failures[:1]}); the batch will be retried"
            )


@dataclass(frozen=True)
class DeadLetter:
    source: str  # "topic/partition/offset" where it was first quarantined
    category: str
    rule: str
    event_id: str | None
    value: bytes  # the record's original bytes
    timestamp_ms: int  # when it reached the dead-letter topic

    @property
    def source_topic(self) -> str:
        return self.source.rsplit("/", 2)[0]


def read(settings: Settings, topic: str, since_ms: int | None = None, timeout: float = 30.0) -> list[DeadLetter]:
    """Every dead letter on ``topic`` (from ``since_ms``) up to its end now, one per source record (the topic is
    at-least-once: the last copy wins)."""
    consumer = kafka.consumer(
        settings,
        f"shopstream-dead-letter-{uuid.uuid4().hex[:8]}",
        {"enable.auto.commit": False, "auto.offset.reset": "earliest"},
    )
    try:
        meta = consumer.list_topics(topic, timeout=timeout)
        if meta.topics[topic].error is not None:
            raise DependencyUnavailable(f"dead-letter topic {topic}: {meta.topics[topic].error}")
        ends, starts = {}, []
        for p in meta.topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            start = low
            if since_ms is not None:
                (at,) = consumer.offsets_for_times([TopicPartition(topic, p, since_ms)], timeout=timeout)
                start = high if at.offset < 0 else max(at.offset, low)
            if start < high:
                ends[p] = high
                starts.append(TopicPartition(topic, p, start))
        found: dict[str, DeadLetter] = {}
        consumer.assign(starts)
        deadline = time.monotonic() + timeout
        while ends:
            if time.monotonic() > deadline:
                raise DependencyUnavailable(f"dead-letter topic {topic} was not read to its end within {timeout:.0f} s")
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            headers = {k: _text(v) for k, v in kafka.header_pairs(msg)}
            source = f"{headers.get('source_topic')}/{headers.get('source_partition')}/{headers.get('source_offset')}"
            found[source] = DeadLetter(
                source,
                headers.get("category", ""),
                headers.get("rule", ""),
                headers.get("event_id"),
                msg.value() or b"",
                msg.timestamp()[1],
            )
            if (msg.offset() or 0) + 1 >= ends.get(msg.partition() or 0, 0):
                ends.pop(msg.partition(), None)
        return list(found.values())
    finally:
        consumer.close()


#: Per source record: (resolved_at, redrive_attempts, last_redrive_rule) from the quarantine table.
STATUS = """
SELECT source_topic || '/' || source_partition || '/' || source_offset, resolved_at IS NOT NULL, redrive_attempts,
       last_redrive_rule
FROM quarantine WHERE source_topic || '/' || source_partition || '/' || source_offset = ANY(%s)
"""


def status(settings: Settings, sources: list[str]) -> dict[str, tuple[bool, int, str | None]]:
    """{source: (resolved, attempts, the rule the latest attempt broke)} for the quarantine rows of ``sources``."""
    with connect(settings, "reader") as conn, conn.cursor() as cur:
        cur.execute(STATUS, (sources,))
        found = {source: (resolved, attempts, rule) for source, resolved, attempts, rule in cur.fetchall()}
    conn.close()
    return found


def redrive(settings: Settings, letters: list[DeadLetter], timeout: float = 30.0) -> str:
    """Publish each dead letter's original bytes to its source topic, headers naming the re-drive; its id."""
    redrive_id = uuid.uuid4().hex
    producer = kafka.producer(settings, {"enable.idempotence": True, "acks": "all", "linger.ms": 5})
    failures: list[str] = []

    def on_delivery(err, _msg):
        if err is not None:
            failures.append(err.str())

    for letter in letters:
        headers: list[tuple[str, str | bytes | None]] = [
            ("redrive_of", letter.source.encode()),
            ("redrive_id", redrive_id.encode()),
            ("produced_at", str(time.time_ns() // 1000).encode()),
        ]
        producer.produce(
            letter.source_topic, letter.value, key=(letter.event_id or None), headers=headers, on_delivery=on_delivery
        )
    remaining = producer.flush(timeout)
    if remaining or failures:
        raise DependencyUnavailable(
            f"{remaining} re-driven records undelivered, {len(failures)} failed "
            f"({failures[:1]}): Kafka at {settings.kafka_bootstrap} is away; run it again "
            f"(a record sent twice is stored once)"
        )
    return redrive_id


def _text(value: str | bytes | None) -> str:
    """A header's value as text (librdkafka hands bytes; a header may be empty)."""
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")
