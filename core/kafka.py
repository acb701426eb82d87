"""Kafka clients, every one built from the settings' one connection model.

No module of ours writes a ``{"bootstrap.servers": …}`` dict of its own: a client is
made here, so a SASL/TLS cluster needs its settings once, in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from tenacity import Retrying, retry_if_exception, stop_after_delay

from core.exceptions import ConfigError, DependencyUnavailable, not_reachable
from core.retry import KAFKA_CALL
from core.settings import Settings


def client_config(settings: Settings, config: dict | None = None) -> dict:
    """librdkafka configuration: the connection, plus ``config``'s dotted keys."""
    return {**settings.kafka.librdkafka(), **(config or {})}


#: librdkafka's own log (a broker away: one line per reconnect) goes through this logger, which the CLI keeps
#: quiet unless --verbose; without one, librdkafka prints to stderr.
LIBRDKAFKA_LOG = logging.getLogger("librdkafka")


def producer(settings: Settings, config: dict | None = None, **kwargs) -> Producer:
    return Producer(client_config(settings, config), **{"logger": LIBRDKAFKA_LOG, **kwargs})


def consumer(settings: Settings, group: str, config: dict | None = None, **kwargs) -> Consumer:
    return Consumer(
        client_config(settings, {"group.id": group, **(config or {})}), **{"logger": LIBRDKAFKA_LOG, **kwargs}
    )


def admin(settings: Settings, config: dict | None = None, **kwargs) -> AdminClient:
    return AdminClient(client_config(settings, config), **{"logger": LIBRDKAFKA_LOG, **kwargs})


Offsets = dict[str, dict[int, int]]  # {topic: {partition: offset}}


def offsets_from_json(data: Mapping[str, Mapping[str, int]] | None) -> Offsets:
    """Offsets from their JSON form (Spark's checkpoint and startingOffsets, the ledger's end_offsets, a
    manifest), where partitions are text. ``json.dumps`` writes an Offsets in that form by itself."""
    return {topic: {int(p): int(o) for p, o in parts.items()} for topic, parts in (data or {}).items()}


class OffsetProbe:
    """One long-lived consumer that reads log-end offsets (lag, idle and drain checks)."""

    def __init__(self, settings: Settings):
        self._consumer = consumer(settings, "shopstream-probe", {"enable.auto.commit": False})

    def log_end_offsets(self, topics: list[str], timeout: float = 10.0) -> Offsets:
        """Retries what the broker calls retriable (a leader being elected, a new topic settling: on a cluster, the
        node that answers may not know a topic just created yet); a topic still unknown after ``timeout`` raises
        UNKNOWN_TOPIC_OR_PART naming it."""
        for attempt in retrying(timeout):
            with attempt:
                meta = self._consumer.list_topics(timeout=timeout)
                for t in topics:
                    known = meta.topics.get(t)
                    if known is None or known.error is not None or not known.partitions:
                        raise KafkaException(
                            known.error
                            if known is not None and known.error is not None
                            else KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, f"topic {t} is not in the metadata")
                        )
                return {
                    t: {
                        p: self._consumer.get_watermark_offsets(TopicPartition(t, p), timeout=timeout)[1]
                        for p in meta.topics[t].partitions
                    }
                    for t in topics
                }
        raise AssertionError("unreachable: Retrying returns or raises")

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> OffsetProbe:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


#: Broker answers that pass: a partition's leader being elected, a new topic settling, a broker away, a group's
#: coordinator not found yet (a fresh cluster creates its offsets topic on the first group request).
RETRIABLE = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
}


def retrying(timeout: float) -> Retrying:
    """Attempts of a call to Kafka, again with backoff while the broker's answer is a retriable one (RETRIABLE),
    for up to ``timeout`` seconds; then its error is raised."""
    return Retrying(
        retry=retry_if_exception(_retriable),
        stop=stop_after_delay(timeout),
        wait=KAFKA_CALL.tenacity(),
        reraise=True,
    )


def _retriable(exc: BaseException) -> bool:
    if not (isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError)):
        return False
    return exc.args[0].retriable() or exc.args[0].code() in RETRIABLE


def header_pairs(msg: Message) -> list[tuple[str, str | bytes | None]]:
    """A message's headers as (key, value) pairs, whichever form the client hands them in."""
    raw = msg.headers() or []
    return list(raw.items()) if isinstance(raw, dict) else list(raw)


def log_end_offsets(settings: Settings, topics: list[str]) -> Offsets:
    """The next offset of every partition of ``topics``, once (a loop should keep an OffsetProbe)."""
    with OffsetProbe(settings) as probe:
        return probe.log_end_offsets(topics)


def unreachable(settings: Settings, exc: KafkaException) -> DependencyUnavailable:
    """The one-line error for a Kafka that did not answer: the broker, librdkafka's reason, and the fix."""
    reason = exc.args[0].str() if exc.args and isinstance(exc.args[0], KafkaError) else str(exc)
    return DependencyUnavailable(
        not_reachable("Kafka", settings.kafka_bootstrap, reason, "run `shopstream up` or fix --bootstrap-servers")
    )


#: What the broker's authorizer refuses, by the kind of resource.
REFUSALS = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "topic",
    KafkaError.GROUP_AUTHORIZATION_FAILED: "group",
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: "cluster",
}


def refused(settings: Settings, name: str, error: KafkaError) -> ConfigError | None:
    """The one-line error for what the broker's ACLs refuse (a misconfiguration, not weather); None for any other
    error."""
    kind = REFUSALS.get(error.code())
    if kind is None:
        return None
    user = settings.kafka_sasl_username or "ANONYMOUS"
    return ConfigError(
        f"Kafka refused user {user} access to {kind} {name} ({error.name()}): its ACLs do not allow it; use the "
        "topic prefix it was granted (`shopstream up` grants SHOPSTREAM_TOPIC_PREFIX's), or grant this one with "
        "`shopstream kafka acls --add`"
    )


def caught_up(committed: Offsets, ends: Offsets) -> bool:
    return all(committed.get(t, {}).get(p, 0) >= end for t, parts in ends.items() for p, end in parts.items())
