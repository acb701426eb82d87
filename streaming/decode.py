"""Confluent-framed Avro to rows, on the JVM (spark-avro ``from_avro``).

``from_avro`` does not understand the Confluent framing, so the 5-byte header is split
off with SQL and every message is decoded with its *own* writer schema (looked up by
the id in its header) into the family's latest reader schema. Decoding a v2 message
with the v1 schema would not fail; it would silently produce wrong fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.avro.functions import from_avro

import schemas
from core.settings import Settings
from schemas.registry import register_family, registry_client


@dataclass(frozen=True)
class WriterSchemas:
    """Per family: the reader schema text and {schema id: writer schema text}."""

    topics: dict[str, str]                 # family -> topic
    readers: dict[str, str]                # family -> reader schema JSON
    writers: dict[str, dict[int, str]]     # family -> {id: writer schema JSON}
    versions: dict[int, int]               # schema id -> subject version


def load_writer_schemas(settings: Settings) -> WriterSchemas:
    """Every registered version of each family's subject (registering ours first, idempotently)."""
    client = registry_client(settings.registry_url)
    topics, readers, writers, versions = {}, {}, {}, {}
    for family, topic in schemas.event_topics(settings).items():
        register_family(client, settings.registry_url, family, topic)
        subject = schemas.subject(topic)
        found = {}
        for version in client.get_versions(subject):
            registered = client.get_version(subject, version)
            found[registered.schema_id] = registered.schema.schema_str
            versions[registered.schema_id] = version
        topics[family] = topic
        readers[family] = json.dumps(schemas.latest(family).definition)
        writers[family] = found
    return WriterSchemas(topics, readers, writers, versions)


def frame_columns(df: DataFrame) -> DataFrame:
    """Adds magic byte, schema id and Avro body columns to Kafka source rows."""
    return (df
            .withColumn("framed", (F.length("value") >= 5) & (F.expr("substring(value, 1, 1)") == F.lit(b"\x00")))
            .withColumn("schema_id", F.when(F.col("framed"),
                                            F.conv(F.hex(F.expr("substring(value, 2, 4)")), 16, 10).cast("long")))
            .withColumn("body", F.expr("substring(value, 6, length(value) - 5)")))


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
    # element_at over the header map (no lambda: higher-order functions cannot be code-generated)
    produced_at = F.expr("try_cast(cast(element_at(map_from_entries(headers), 'produced_at') as string) as long)")
    framed = frame_columns(df.withColumn("family", family))
    return framed.select(
        "topic", "partition", "offset", F.col("timestamp").alias("kafka_time"), "value", "family", "framed",
        "schema_id",
        F.when(F.col("family") == "clickstream", known_id("clickstream", ws))
         .when(F.col("family") == "orders", known_id("orders", ws)).otherwise(F.lit(False)).alias("known_schema"),
        decoded_column("clickstream", ws).alias("click"),
        decoded_column("orders", ws).alias("order"),
        F.timestamp_micros(produced_at).alias("produced_at"),
        F.element_at(F.create_map(*[F.lit(x) for kv in sorted(ws.versions.items()) for x in kv]),
                     F.col("schema_id")).alias("schema_version") if ws.versions else F.lit(None).alias("schema_version"),
    )
