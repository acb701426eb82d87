"""Live schema evolution: a compatible version that a producer registers while the job runs is decoded and
stored without anyone restarting the job (issue 16)."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

import producers
import schemas
from core import kafka
from core.database import connect
from infra.orchestration.harness import PipelineRun
from infra.orchestration.processes import StreamProcess, job_metrics
from producers.generator import EventGenerator
from producers.options import FaultRatios, ProduceOptions
from tests.fixtures.database import scalar

pytestmark = pytest.mark.slow

NO_FAULTS = FaultRatios(schema=0, data_type=0, completeness=0, business_rules=0)
NEW_FIELD = "loyalty_tier"


def v3_clickstream_schema() -> str:
    """Our newest clickstream schema plus one optional field: what a team would register next."""
    definition = json.loads(schemas.latest("clickstream").text)
    definition["doc"] = "Version 3 (registered by a test): adds the shopper's loyalty tier."
    definition["fields"].append({"name": NEW_FIELD, "type": ["null", "string"], "default": None})
    return json.dumps(definition)


def produce_v3(settings, n: int) -> dict[str, str]:
    """``n`` valid clickstream events written with v3 through confluent-kafka's serializer, which registers v3
    (as any producer would). Returns {event_id: loyalty tier}."""
    topic = settings.topic("clickstream")
    serializer = AvroSerializer(
        SchemaRegistryClient({"url": settings.registry_url, "timeout": 10}),
        v3_clickstream_schema(),
        conf={"auto.register.schemas": True, "subject.name.strategy": topic_subject_name_strategy},
    )
    ctx = SerializationContext(topic, MessageField.VALUE)
    gen = EventGenerator(ProduceOptions(count=1, run_id="v3", v2_ratio=1.0, faults=NO_FAULTS, duplicate_ratio=0))
    producer = kafka.producer(settings, {"acks": "all"})
    tiers = {}
    v2_fields = [f["name"] for f in schemas.latest("clickstream").definition["fields"]]
    while len(tiers) < n:
        event = next(gen)
        if event.family != "clickstream":
            continue
        record = {name: event.record[name] for name in v2_fields} | {
            NEW_FIELD: ("gold", "silver", None)[len(tiers) % 3]
        }
        producer.produce(topic, serializer(record, ctx), key=event.key)
        tiers[record["event_id"]] = record[NEW_FIELD]
    assert producer.flush(30) == 0
    return tiers


def test_a_version_registered_while_the_job_runs_is_decoded_and_stored_with_its_new_field(pipeline_env):
    settings, options = pipeline_env
    stream = StreamProcess(settings, options)
    stream.start()
    try:
        # The job runs on v1 and v2 (our versions); a first batch commits on that plan. Its made-up schema ids
        # (a fault of the producer's) are asked about, unknown to the registry too, and quarantined.
        faults = FaultRatios(schema=0.2, data_type=0, completeness=0, business_rules=0)
        manifest = producers.run(settings, ProduceOptions(rate=0, count=300, faults=faults, duplicate_ratio=0)).manifest
        PipelineRun(settings, stream).drain()

        tiers = produce_v3(settings, 90)
        PipelineRun(settings, stream).drain()
        metrics = job_metrics(settings)
    finally:
        assert stream.stop() == 0

    with connect(settings, "reader") as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT event_id::text, schema_version, extra_fields FROM clickstream_events "
            "WHERE event_id = ANY(%s::uuid[])",
            (list(tiers),),
        )
        rows = {event_id: (version, extra) for event_id, version, extra in cur.fetchall()}
    conn.close()
    assert len(rows) == len(tiers), "every v3 event is stored"
    v3 = {version for version, _ in rows.values()}
    assert v3 == {3}, f"stored as subject version 3, found {v3}"
    for event_id, tier in tiers.items():
        assert rows[event_id][1] == ({NEW_FIELD: tier} if tier else None), event_id
    # v1/v2 events stored on the new plan carry no extra field
    assert (
        scalar(
            settings, "SELECT count(*) FROM clickstream_events WHERE schema_version < 3 AND extra_fields IS NOT NULL"
        )
        == 0
    )
    unknown = manifest.quarantine_expected()["schema"].get("unknown_schema_id", 0)
    assert unknown > 0
    assert scalar(settings, "SELECT count(*) FROM quarantine WHERE rule = 'unknown_schema_id'") == unknown, (
        "only the ids the registry does not know are quarantined as unknown"
    )
    assert metrics.get("shopstream_stream_schema_reloads_total") == 1
    assert not metrics.get("shopstream_stream_restarts_total"), "a planned restart is not a failure"
