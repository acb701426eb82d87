"""Offsets: what Spark recorded for a batch, and their mirror in a Kafka consumer group.

Spark writes a batch's end offsets to ``checkpoint/offsets/<batch id>`` *before* it
runs the batch, so a replayed batch has the same id and the same offsets; that file is
what the ledger stores. Spark never commits offsets to Kafka, so after each commit the
ledger's offsets are mirrored to a consumer group, and `kafka-consumer-groups
--describe` shows true lag.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition

from core import kafka
from core.settings import Settings

log = logging.getLogger(__name__)


def checkpoint_query_id(checkpoint: Path) -> str:
    """The streaming query's id: stable across restarts from the same checkpoint."""
    return json.loads((checkpoint / "metadata").read_text())["id"]


def batch_end_offsets(checkpoint: Path, batch_id: int) -> dict[str, dict[str, int]]:
    """{topic: {partition: next offset}} that Spark logged for ``batch_id``."""
    lines = (checkpoint / "offsets" / str(batch_id)).read_text().splitlines()
    # v1, then batch metadata, then one JSON line per source (we have one: Kafka)
    return json.loads(lines[2])


class GroupOffsetMirror:
    def __init__(self, settings: Settings, group: str):
        self.group = group
        self.admin = kafka.admin(settings)

    def mirror(self, end_offsets: dict[str, dict[str, int]], timeout: float = 10.0) -> bool:
        partitions = [TopicPartition(topic, int(p), int(offset))
                      for topic, parts in end_offsets.items() for p, offset in parts.items()]
        if not partitions:
            return True
        try:
            futures = self.admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(self.group, partitions)],
                                                              request_timeout=timeout)
            for future in futures.values():
                future.result(timeout=timeout)
            return True
        except (KafkaException, TimeoutError) as exc:
            # The ledger is the truth; the group is a view of it for Kafka's tools.
            log.warning("could not mirror offsets to consumer group %s: %s", self.group, exc)
            return False
