"""Registering the schemas through the registry's Confluent-compatible API (the producer and
the stream job both register, idempotently, so either can start first)."""

from __future__ import annotations

import logging

import httpx2  # confluent-kafka's schema-registry HTTP client
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

import schemas
from core.exceptions import RegistryError, RegistryUnavailable, not_reachable

log = logging.getLogger(__name__)

COMPATIBILITY = "BACKWARD"


def registry_client(url: str, timeout_s: float = 10.0, retries: int | None = None) -> SchemaRegistryClient:
    """``retries``: of a 5xx or 429 answer (the client's own default when None)."""
    conf = {"url": url, "timeout": timeout_s}
    if retries is not None:
        conf["max.retries"] = retries
    return SchemaRegistryClient(conf)


def unreachable(url: str, exc: Exception) -> RegistryUnavailable:
    """The one error for a registry that did not answer (refused, timed out)."""
    return RegistryUnavailable(
        not_reachable("the schema registry", url, str(exc), "run `shopstream up` or fix --schema-registry-url")
    )


def register_family(client: SchemaRegistryClient, url: str, family: str, topic: str) -> dict[int, int]:
    """Register every version of ``family`` under ``topic``'s value subject, oldest first,
    with BACKWARD compatibility enforced. Returns {version: schema id}. Idempotent."""
    subject = schemas.subject(topic)
    try:
        client.set_compatibility(subject, COMPATIBILITY)
        ids = {}
        for version in schemas.versions(family):
            ids[version.version] = client.register_schema(subject, Schema(version.text, "AVRO"))
    except SchemaRegistryError as exc:
        raise RegistryError(f"the registry refused schema {family} for {subject}: {exc}") from exc
    except httpx2.TransportError as exc:  # the client's HTTP layer: refused, timed out
        raise unreachable(url, exc) from exc
    log.debug("registered %s under %s: %s", family, subject, ids)
    return ids
