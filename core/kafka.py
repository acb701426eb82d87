"""Kafka clients, every one built from the settings' one connection model.

No module of ours writes a ``{"bootstrap.servers": …}`` dict of its own: a client is
made here, so a SASL/TLS cluster needs its settings once, in one place.
"""

from __future__ import annotations

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from core.settings import Settings


def client_config(settings: Settings, config: dict | None = None) -> dict:
    """librdkafka configuration: the connection, plus ``config``'s dotted keys."""
    return {**settings.kafka.librdkafka(), **(config or {})}


def producer(settings: Settings, config: dict | None = None, **kwargs) -> Producer:
    return Producer(client_config(settings, config), **kwargs)


def consumer(settings: Settings, group: str, config: dict | None = None, **kwargs) -> Consumer:
    return Consumer(client_config(settings, {"group.id": group, **(config or {})}), **kwargs)


def admin(settings: Settings, config: dict | None = None, **kwargs) -> AdminClient:
    return AdminClient(client_config(settings, config), **kwargs)


Offsets = dict[str, dict[str, int]]   # {topic: {partition: offset}}, partitions as strings (Spark's JSON form)


class OffsetProbe:
    """One long-lived consumer that reads log-end offsets (lag, idle and drain checks)."""

    def __init__(self, settings: Settings):
        self._consumer = consumer(settings, "shopstream-probe", {"enable.auto.commit": False})

    def log_end_offsets(self, topics: list[str], timeout: float = 10.0) -> Offsets:
        meta = self._consumer.list_topics(timeout=timeout)
        return {t: {str(p): self._consumer.get_watermark_offsets(TopicPartition(t, p), timeout=timeout)[1]
                    for p in meta.topics[t].partitions} for t in topics}

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> "OffsetProbe":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def log_end_offsets(settings: Settings, topics: list[str]) -> Offsets:
    """The next offset of every partition of ``topics``, once (a loop should keep an OffsetProbe)."""
    with OffsetProbe(settings) as probe:
        return probe.log_end_offsets(topics)


def caught_up(committed: Offsets, ends: Offsets) -> bool:
    return all(committed.get(t, {}).get(p, 0) >= end for t, parts in ends.items() for p, end in parts.items())
