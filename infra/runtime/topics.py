"""The declarative topic spec (infra/runtime/topics.yaml) and its idempotent application."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import yaml
from confluent_kafka import KafkaException
from confluent_kafka.admin import NewTopic

from core import kafka
from core.exceptions import ConfigError, ServiceUnhealthy
from core.settings import Settings

log = logging.getLogger(__name__)

SPEC_PATH = Path(__file__).with_name("topics.yaml")
_FIELDS = {
    "name",
    "partitions",
    "retention_ms",
    "cleanup_policy",
    "min_insync_replicas",
    "replication_factor",
    "timestamp_type",
}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    cleanup_policy: str = "delete"
    min_insync_replicas: int = 1
    replication_factor: int = 1
    timestamp_type: str = "CreateTime"

    def config(self) -> dict[str, str]:
        return {
            "retention.ms": str(self.retention_ms),
            "cleanup.policy": self.cleanup_policy,
            "min.insync.replicas": str(self.min_insync_replicas),
            "message.timestamp.type": self.timestamp_type,
        }

    def on_cluster_of(self, brokers: int) -> TopicSpec:
        """This spec on a cluster of ``brokers``: at most one replica per broker. A topic with fewer replicas than
        its spec keeps one replica that may be lost (min.insync.replicas = replicas - 1, at least 1), so one
        broker down never stops its writes; a single broker gives 1 and 1."""
        replicas = max(1, min(self.replication_factor, brokers))
        if replicas == self.replication_factor:
            return self
        return replace(
            self, replication_factor=replicas, min_insync_replicas=max(1, min(self.min_insync_replicas, replicas - 1))
        )


def load_topic_specs(path: Path = SPEC_PATH) -> list[TopicSpec]:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read topic spec {path}: {exc}") from exc
    entries = raw.get("topics") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"topic spec {path} must have a non-empty `topics:` list")
    specs: list[TopicSpec] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "name" not in entry:
            raise ConfigError(f"topic spec {path}: entry {i + 1} needs at least a name")
        unknown = set(entry) - _FIELDS
        if unknown:
            raise ConfigError(f"topic spec {path}: topic {entry['name']!r} has unknown keys {sorted(unknown)}")
        try:
            spec = TopicSpec(**entry)
        except TypeError as exc:
            raise ConfigError(f"topic spec {path}: topic {entry['name']!r}: {exc}") from exc
        if not isinstance(spec.partitions, int) or spec.partitions < 1:
            raise ConfigError(f"topic spec {path}: topic {spec.name!r} needs partitions >= 1")
        if not isinstance(spec.retention_ms, int) or (spec.retention_ms < 1 and spec.retention_ms != -1):
            raise ConfigError(f"topic spec {path}: topic {spec.name!r} needs retention_ms > 0 or -1")
        if spec.cleanup_policy not in ("delete", "compact", "compact,delete", "delete,compact"):
            raise ConfigError(f"topic spec {path}: topic {spec.name!r} has cleanup_policy {spec.cleanup_policy!r}")
        if spec.timestamp_type not in ("CreateTime", "LogAppendTime"):
            raise ConfigError(f"topic spec {path}: topic {spec.name!r} has timestamp_type {spec.timestamp_type!r}")
        if spec.min_insync_replicas > spec.replication_factor:
            raise ConfigError(f"topic spec {path}: topic {spec.name!r} has min_insync_replicas above its replication")
        specs.append(spec)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"topic spec {path}: duplicate topic names")
    return specs


def ensure_topics(settings: Settings, prefix: str, specs: list[TopicSpec], timeout: float = 30.0) -> list[str]:
    """Create the missing topics, replicated as their spec says on a cluster that has the brokers for it (see
    TopicSpec.on_cluster_of). Returns the names created."""
    admin = kafka.admin(settings)
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise kafka.unreachable(settings, exc) from exc
    brokers = len(metadata.brokers)
    wanted = [
        NewTopic(
            f"{prefix}.{s.name}",
            num_partitions=s.partitions,
            replication_factor=s.replication_factor,
            config=s.config(),
        )
        for s in (spec.on_cluster_of(brokers) for spec in specs)
        if f"{prefix}.{s.name}" not in metadata.topics
    ]
    if not wanted:
        return []
    for name, future in admin.create_topics(wanted, operation_timeout=timeout).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args and (refusal := kafka.refused(settings, name, exc.args[0])):
                raise refusal from None
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise ServiceUnhealthy(f"could not create topic {name}: {exc}") from exc
        log.info("created topic %s", name)
    return [t.topic for t in wanted]


def delete_topics(settings: Settings, prefix: str, specs: list[TopicSpec], timeout: float = 30.0) -> None:
    """Delete a prefix's topics (benchmark levels clean up after themselves)."""
    admin = kafka.admin(settings)
    for name, future in admin.delete_topics([f"{prefix}.{s.name}" for s in specs], operation_timeout=timeout).items():
        try:
            future.result()
        except KafkaException as exc:
            log.warning("could not delete topic %s: %s", name, exc)
