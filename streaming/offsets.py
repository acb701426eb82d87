"""Offsets: what Spark recorded for a batch, and their mirror in a Kafka consumer group.

Spark writes a batch's end offsets to ``checkpoint/offsets/<batch id>`` *before* it
runs the batch, so a replayed batch has the same id and the same offsets; that file is
what the ledger stores. Spark never commits offsets to Kafka, so after each commit the
ledger's offsets are mirrored to a consumer group, and `kafka-consumer-groups
--describe` shows true lag.

The group is also the way in for a replay: reset it with Kafka's own tool, then start
the job with ``--from-group-offsets``. A reset made while the job runs (or while it was
stopped, then started without that flag) is noticed, not overwritten: the job says so
and leaves the group where the user put it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

from confluent_kafka import KafkaException, TopicPartition

from core import kafka
from core.kafka import Offsets, offsets_from_json
from core.settings import Settings

log = logging.getLogger(__name__)


def checkpoint_query_id(checkpoint: Path) -> str:
    """The streaming query's id: stable across restarts from the same checkpoint."""
    return json.loads((checkpoint / "metadata").read_text())["id"]


def batch_end_offsets(checkpoint: Path, batch_id: int) -> Offsets:
    """{topic: {partition: next offset}} that Spark logged for ``batch_id``."""
    lines = (checkpoint / "offsets" / str(batch_id)).read_text().splitlines()
    # v1, then batch metadata, then one JSON line per source (we have one: Kafka)
    return offsets_from_json(json.loads(lines[2]))


def batch_start_offsets(checkpoint: Path, batch_id: int) -> Offsets:
    """Where ``batch_id`` began: the previous batch's end, or for the first batch the source's initial offsets
    (``sources/0/0``: a version line, then the JSON). Empty when Spark no longer keeps them."""
    try:
        if batch_id > 0:
            return batch_end_offsets(checkpoint, batch_id - 1)
        text = (checkpoint / "sources" / "0" / "0").read_text()
        return offsets_from_json(json.loads(text[text.index("{") :]))
    except (OSError, ValueError, IndexError):
        return {}


def behind(start: Offsets, mark: Offsets) -> bool:
    """Whether any partition starts below ``mark``: a batch that re-reads what was read before."""
    return any(
        int(offset) < int(mark.get(topic, {}).get(p, -1))
        for topic, parts in start.items()
        for p, offset in parts.items()
    )


def group_offsets(settings: Settings, group: str, topics: list[str], timeout: float = 10.0) -> Offsets:
    """The group's committed offsets on ``topics`` (partitions without one are left out)."""
    consumer = group_reader(settings, group)
    try:
        meta = consumer.list_topics(timeout=timeout)
        return committed(consumer, [TopicPartition(t, p) for t in topics for p in meta.topics[t].partitions], timeout)
    finally:
        consumer.close()


def group_reader(settings: Settings, group: str):
    """A consumer of ``group`` that never joins it (no subscribe), to read its committed offsets.

    Not the admin client's ListConsumerGroupOffsets: when the group's coordinator answers NOT_COORDINATOR, as a
    fresh cluster's does for a group it has not seen, librdkafka (2.16) hands the answer to the admin client's
    consumer-group handle, which is null, and the process dies of SIGSEGV (librdkafka#5040). On a clean state
    that killed the stream job about one start in two, 1.3 s in. A consumer has that handle: it asks for the
    coordinator again."""
    return kafka.consumer(settings, group, {"enable.auto.commit": False})


def committed(consumer, partitions: list[TopicPartition], timeout: float) -> Offsets:
    """What ``consumer``'s group committed on ``partitions``; asked again while the coordinator is being found,
    all within ``timeout`` (the mirror asks after every batch)."""
    deadline = time.monotonic() + timeout
    for attempt in kafka.retrying(timeout):
        with attempt:
            answer = consumer.committed(partitions, timeout=max(deadline - time.monotonic(), 0.1))
    found: Offsets = {}
    for tp in answer:
        if tp.offset >= 0:
            found.setdefault(tp.topic, {})[tp.partition] = tp.offset
    return found


def offsets_at(settings: Settings, topics: list[str], when_ms: int | None, timeout: float = 10.0) -> Offsets:
    """Per partition, the first offset whose timestamp is at or after ``when_ms`` (the log end when none is);
    ``when_ms`` None: the earliest offset still kept."""
    consumer = kafka.consumer(settings, "shopstream-offsets", {"enable.auto.commit": False})
    try:
        meta = consumer.list_topics(timeout=timeout)
        found: Offsets = {}
        for topic in topics:
            for p in meta.topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
                if when_ms is None:
                    offset = low
                else:
                    (tp,) = consumer.offsets_for_times([TopicPartition(topic, p, when_ms)], timeout=timeout)
                    offset = high if tp.offset < 0 else tp.offset
                found.setdefault(topic, {})[p] = offset
        return found
    finally:
        consumer.close()


class GroupOffsetMirror:
    """Copies each committed batch's end offsets to the consumer group ``group``, unless someone reset the group:
    ``expected`` is what the group should hold (the ledger's resume point at start, then each mirrored batch),
    and a group found elsewhere was moved by hand. That reset is left in place, logged with the way to replay
    from it, and ``reset_to`` holds it (the job's metrics show it)."""

    def __init__(self, settings: Settings, group: str, expected: Offsets | None = None):
        self.group = group
        self.reader = group_reader(settings, group)
        self.expected = expected or None
        self.reset_to: Offsets | None = None
        self._commit_thread: threading.Thread | None = None  # a commit that had not returned in time

    def _moved(self, timeout: float) -> Offsets | None:
        """The group's offsets where they differ from ``expected``; None when they do not (or nobody knows)."""
        if not self.expected:
            return None
        wanted = [TopicPartition(t, int(p)) for t, parts in self.expected.items() for p in parts]
        moved = {
            t: {p: offset for p, offset in parts.items() if offset != int(self.expected[t][p])}
            for t, parts in committed(self.reader, wanted, timeout).items()
        }
        return {t: parts for t, parts in moved.items() if parts} or None

    def close(self) -> None:
        if self._commit_thread is None or not self._commit_thread.is_alive():  # else the process's end frees it
            self.reader.close()

    def _commit(self, partitions: list[TopicPartition], timeout: float) -> None:
        """Set the group's offsets with the reader's own commit (a member of no generation: the group must be
        empty, as for Kafka's tools). Not the admin client's AlterConsumerGroupOffsets: when a coordinator request
        fails on a dropped connection (a broker that dies), librdkafka (2.16) frees its enqueue-once handle twice
        and aborts the process, `rd_kafka_enq_once_del_source_return: Assertion eonce->refcnt > 0` (librdkafka
        #4605, fix pending in #5397): that restarted the stream job's process in one broker-kill run in three. A
        commit gets no timeout from librdkafka while the coordinator is away: it runs in a thread of its own, and
        one that has not returned within ``timeout`` is left to finish (the next mirror waits for it)."""
        errors: list[BaseException] = []

        def commit() -> None:
            try:
                for tp in self.reader.commit(offsets=partitions, asynchronous=False) or ():
                    if tp.error is not None:
                        raise KafkaException(tp.error)
            except KafkaException as exc:
                errors.append(exc)

        self._commit_thread = threading.Thread(target=commit, name="group-offsets-commit", daemon=True)
        self._commit_thread.start()
        self._commit_thread.join(timeout)
        if self._commit_thread.is_alive():
            raise TimeoutError(f"the group's coordinator did not answer within {timeout:.0f} s")
        if errors:
            raise errors[0]

    def mirror(self, end_offsets: Offsets, timeout: float = 10.0) -> bool:
        partitions = [
            TopicPartition(topic, int(p), int(offset))
            for topic, parts in end_offsets.items()
            for p, offset in parts.items()
        ]
        if not partitions or self.reset_to is not None:
            return True
        if self._commit_thread is not None and self._commit_thread.is_alive():
            self.expected = None  # the commit still out may yet land: the group is not known
            return False
        try:
            moved = self._moved(timeout)
            if moved is not None:
                self.reset_to = moved
                log.warning(
                    "consumer group %s was reset by hand (now at %s); this job reads its own checkpoint and "
                    "leaves the group as it is. To replay from there: stop the job, then run `shopstream "
                    "stream --from-group-offsets --pipeline %s` (or `shopstream replay --from TIME`)",
                    self.group,
                    json.dumps(moved),
                    self.group,
                )
                return False
            self._commit(partitions, timeout)
            self.expected = {t: {p: int(o) for p, o in parts.items()} for t, parts in end_offsets.items()}
            return True
        except (KafkaException, TimeoutError) as exc:
            self.expected = None  # unknown: an alter that timed out here may still have reached the broker
            # The ledger is the truth; the group is a view of it for Kafka's tools.
            log.warning("could not mirror offsets to consumer group %s: %s", self.group, exc)
            return False
