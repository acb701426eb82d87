"""Confluent-framed Avro to rows, on the JVM (spark-avro ``from_avro``).

``from_avro`` does not understand the Confluent framing, so the 5-byte header is split
off with SQL and every message is decoded with its *own* writer schema (looked up by
the id in its header) into the family's latest reader schema. Decoding a v2 message
with the v1 schema would not fail; it would silently produce wrong fields.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

import httpx2
from confluent_kafka.schema_registry.error import SchemaRegistryError
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.avro.functions import from_avro

import schemas
from core.exceptions import RegistryError, RegistryUnavailable
from core.settings import Settings
from schemas.registry import register_family, registry_client, unreachable

log = logging.getLogger(__name__)

#: The redrive_of header's form: the dead letter's source topic, partition and offset.
REDRIVE_OF = r"^[^/]+/[0-9]+/[0-9]+$"


@dataclass(frozen=True)
class WriterSchemas:
    """Per family: the reader schema text and {schema id: writer schema text}."""

    topics: dict[str, str]  # family -> topic
    readers: dict[str, str]  # family -> reader schema JSON
    writers: dict[str, dict[int, str]]  # family -> {id: writer schema JSON}
    versions: dict[int, int]  # schema id -> subject version
    extras: dict[str, tuple[str, ...]] = field(default_factory=dict)  # family -> reader fields without a column

    def ids(self) -> set[int]:
        return {schema_id for found in self.writers.values() for schema_id in found}


def load_writer_schemas(
    settings: Settings, register: bool = True, timeout_s: float = 10.0, retries: int | None = None
) -> WriterSchemas:
    """Every registered version of each family's subject (registering ours first, idempotently, unless
    ``register`` is false). The reader is the subject's newest version when it keeps every field of ours (a
    version registered after this code was written: its new fields are ``extras``); else our newest.
    A registry that answers with a server error (5xx) or not at all is RegistryUnavailable: weather."""
    client = registry_client(settings.registry_url, timeout_s, retries)
    topics: dict[str, str] = {}
    readers: dict[str, str] = {}
    writers: dict[str, dict[int, str]] = {}
    versions: dict[int, int] = {}
    extras: dict[str, tuple[str, ...]] = {}
    for family, topic in schemas.event_topics(settings).items():
        if register:
            register_family(client, settings.registry_url, family, topic)
        subject = schemas.subject(topic)
        found: dict[int, str] = {}
        newest = None
        try:
            for version in sorted(client.get_versions(subject)):
                registered = client.get_version(subject, version)
                schema_id, schema_str = registered.schema_id, registered.schema.schema_str
                if schema_id is None or schema_str is None:
                    raise RegistryError(f"the registry gave {subject} v{version} without an id or a schema")
                found[schema_id] = schema_str
                versions[schema_id] = version
                newest = schema_str
        except SchemaRegistryError as exc:
            if exc.http_status_code >= 500:  # up, but its own storage is not (Apicurio keeps it in PostgreSQL)
                raise RegistryUnavailable(
                    f"the schema registry at {settings.registry_url} answered with a server "
                    f"error ({exc}): it is up but cannot read its storage (see `shopstream "
                    f"status` and its log)"
                ) from exc
            raise RegistryError(f"the registry did not list the versions of {subject}: {exc}") from exc
        except httpx2.TransportError as exc:
            raise unreachable(settings.registry_url, exc) from exc
        topics[family] = topic
        readers[family], extras[family] = reader_schema(family, newest)
        writers[family] = found
    return WriterSchemas(topics, readers, writers, versions, extras)


def reader_schema(family: str, newest_registered: str | None) -> tuple[str, tuple[str, ...]]:
    """(reader schema JSON, its fields that ours lacks) for ``family``.

    A compatible version that someone registered after ours (BACKWARD: it may add optional fields) is the
    reader, so its new fields decode; they are stored as ``extra_fields`` JSON. A newest version that drops
    or renames one of our fields cannot be the reader (the plan reads every field of ours): ours is."""
    ours = schemas.latest(family).definition
    if newest_registered is None:
        return json.dumps(ours), ()
    theirs = json.loads(newest_registered)
    our_fields = [f["name"] for f in ours["fields"]]
    their_fields = [f["name"] for f in theirs.get("fields", [])]
    if theirs.get("name") != ours["name"] or not set(our_fields) <= set(their_fields):
        log.warning("the newest registered %s schema lacks fields of ours: decoding into ours", family)
        return json.dumps(ours), ()
    return newest_registered, tuple(f for f in their_fields if f not in our_fields)


class SchemaWatch:
    """Tells whether schema ids the job has not seen have since been registered for its subjects.

    Asked only about ids that a batch would quarantine as ``unknown_schema_id``; an id the registry does not
    know either is not asked about again for ``recheck_s`` (a producer that sends a made-up id, batch after
    batch, costs one registry round trip a minute)."""

    def __init__(self, settings: Settings, recheck_s: float = 60.0, timeout_s: float = 2.0):
        """``timeout_s``: per request, without the client's retries. The registry keeps its schemas in our
        PostgreSQL, so while the database is down a lookup hangs until it times out: short, so that the batch
        fails fast, its query restarts, and the sink's own retry (the first thing a batch does) reports the
        database's outage. With the client's defaults (10 s a request, retries) a batch was held 24 s and more."""
        self.settings, self.recheck_s, self.timeout_s = settings, recheck_s, timeout_s
        self.unknown_until: dict[int, float] = {}

    def newly_registered(self, ids: set[int]) -> WriterSchemas | None:
        """The writer schemas with the new versions, when any of ``ids`` now belongs to our subjects; else None.
        Raises RegistryUnavailable when the registry cannot be asked (the batch cannot be judged: retried)."""
        now = time.monotonic()
        ask = {i for i in ids if self.unknown_until.get(i, 0.0) <= now}
        if not ask:
            return None
        fresh = load_writer_schemas(self.settings, register=False, timeout_s=self.timeout_s, retries=0)
        if ask & fresh.ids():
            log.info("schema ids %s were registered after the job started", sorted(ask & fresh.ids()))
            return fresh
        self.unknown_until.update(dict.fromkeys(ask, now + self.recheck_s))
        return None


def frame_columns(df: DataFrame) -> DataFrame:
    """Adds magic byte, schema id and Avro body columns to Kafka source rows."""
    return (
        df.withColumn("framed", (F.length("value") >= 5) & (F.expr("substring(value, 1, 1)") == F.lit(b"\x00")))
        .withColumn(
            "schema_id", F.when(F.col("framed"), F.conv(F.hex(F.expr("substring(value, 2, 4)")), 16, 10).cast("long"))
        )
        .withColumn("body", F.expr("substring(value, 6, length(value) - 5)"))
    )


def decoded_column(family: str, ws: WriterSchemas) -> Column:
    """The family's record decoded into its reader schema, or null (unknown id, bad Avro, other family)."""
    options = {"mode": "PERMISSIVE", "avroSchema": ws.readers[family]}
    branches = None
    for schema_id, writer in sorted(ws.writers[family].items()):
        cond = (F.col("topic") == ws.topics[family]) & (F.col("schema_id") == schema_id)
        value = from_avro(F.col("body"), writer, options)
        branches = F.when(cond, value) if branches is None else branches.when(cond, value)
    return branches if branches is not None else F.lit(None)


def known_id(family: str, ws: WriterSchemas) -> Column:
    return F.col("schema_id").isin(list(ws.writers[family]))


def decode(df: DataFrame, ws: WriterSchemas) -> DataFrame:
    """Kafka rows -> rows with ``family``, ``click`` and ``order`` structs and framing facts."""
    families = list(ws.topics)
    family = None
    for name in families:
        cond = F.col("topic") == ws.topics[name]
        family = F.when(cond, F.lit(name)) if family is None else family.when(cond, F.lit(name))
    if family is None:
        raise ValueError("no event topics to decode")
    # element_at over the header map (no lambda: higher-order functions cannot be code-generated)
    produced_at = F.expr("try_cast(cast(element_at(map_from_entries(headers), 'produced_at') as string) as long)")
    # A dead letter sent back (`shopstream dead-letter redrive`) names its first coordinates: "topic/partition/offset".
    redrive_of = F.expr("cast(element_at(map_from_entries(headers), 'redrive_of') as string)")
    framed = frame_columns(df.withColumn("family", family))
    return framed.select(
        "topic",
        "partition",
        "offset",
        F.col("timestamp").alias("kafka_time"),
        "value",
        "family",
        "framed",
        "schema_id",
        F.when(F.col("family") == "clickstream", known_id("clickstream", ws))
        .when(F.col("family") == "orders", known_id("orders", ws))
        .otherwise(F.lit(False))
        .alias("known_schema"),
        decoded_column("clickstream", ws).alias("click"),
        decoded_column("orders", ws).alias("order"),
        F.timestamp_micros(produced_at).alias("produced_at"),
        F.when(redrive_of.rlike(REDRIVE_OF), redrive_of).alias("redrive_of"),
        F.element_at(
            F.create_map(*[F.lit(x) for kv in sorted(ws.versions.items()) for x in kv]), F.col("schema_id")
        ).alias("schema_version")
        if ws.versions
        else F.lit(None).alias("schema_version"),
    )
