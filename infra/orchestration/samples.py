"""Generated events for the stream job: as Kafka source rows without Kafka, and in the job's
warm-up topics.

`shopstream bench transform` and the unit tests feed the rows to the transformation: the producer's own events, framed with the schema ids of a
``WriterSchemas`` and broken where the generator broke them, in the Kafka source's
row layout (streaming.job.KAFKA_ROW_SCHEMA). It joins two stages (the generator and the stream job's row layout), so it
lives with the orchestration that wires them. The warm-up (``warmup_topics``) writes the
same mix to private topics through the producer, so the job warms up on its own plan.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
from collections.abc import Callable, Iterable, Iterator

import schemas
from core.settings import Settings
from infra.runtime.topics import delete_topics, ensure_topics, load_topic_specs
from producers import faults
from producers.generator import EventGenerator, GeneratedEvent
from producers.options import DEFAULT_FAULTS, NO_FAULTS, FaultRatios, ProduceOptions
from producers.serialization import ConfluentAvroSerializer
from streaming.decode import WriterSchemas, load_writer_schemas


def catalogue_schemas(topics: dict[str, str] | None = None) -> WriterSchemas:
    """WriterSchemas from the schema catalogue with fixed ids (no registry needed)."""
    topics = topics or {family: f"bench.{family}" for family in schemas.FAMILIES}
    ids = {
        (family, v.version): 10 * n + v.version for n, family in enumerate(topics, 1) for v in schemas.versions(family)
    }
    readers = {f: json.dumps(schemas.latest(f).definition) for f in topics}
    writers = {f: {ids[(f, v.version)]: v.text for v in schemas.versions(f)} for f in topics}
    versions = {ids[(f, v.version)]: v.version for f in topics for v in schemas.versions(f)}
    return WriterSchemas(topics, readers, writers, versions)


def generated_events(count: int, seed: int = 1, fault_ratios: FaultRatios | None = None) -> list[GeneratedEvent]:
    """The producer's events: every schema version, broken at ``fault_ratios`` (default: none)."""
    generator = EventGenerator(
        ProduceOptions(
            count=count,
            seed=seed,
            run_id="samples",
            sessions=50,
            customers=200,
            products=100,
            late_ratio=0.0,
            faults=fault_ratios or NO_FAULTS,
        )
    )
    return [next(generator) for _ in range(count)]


#: The warm-up's mix: `run`'s bad-data mix, raised so that every rule's path is compiled
#: from a few thousand events (each category about 5 %).
WARMUP_FAULTS = FaultRatios(**dict.fromkeys(DEFAULT_FAULTS, 0.05))


WARMUP_EVENTS = 12000  # eight warm-up batches: see streaming.job.warm_up


@contextlib.contextmanager
def warmup_topics(settings: Settings, pipeline: str) -> Iterator[tuple[Settings, WriterSchemas]]:
    """Private topics (``<prefix>.warmup-<pipeline>.*``: two jobs never share them) holding WARMUP_EVENTS of the
    producer's mix, for the stream job's warm-up (streaming.job.warm_up); deleted afterwards. The live topics
    never see a made-up event."""
    import producers

    warm = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}.warmup-{pipeline}"})
    specs = [s for s in load_topic_specs() if warm.topic(s.name) in schemas.event_topics(warm).values()]
    ensure_topics(warm, warm.topic_prefix, specs)
    try:
        producers.run(warm, ProduceOptions(rate=0, count=WARMUP_EVENTS, faults=WARMUP_FAULTS, run_id="warmup"))
        yield warm, load_writer_schemas(warm)
    finally:
        delete_topics(warm, warm.topic_prefix, specs)


def kafka_source_rows(
    ws: WriterSchemas,
    events: Iterable[GeneratedEvent],
    kafka_time: Callable[[GeneratedEvent], dt.datetime] | None = None,
) -> list[tuple]:
    """One row per event; the Kafka timestamp (and produced_at header) is now unless ``kafka_time`` says."""
    ids = {(family, ws.versions[sid]): sid for family, by_id in ws.writers.items() for sid in by_id}
    serializers = {key: ConfluentAvroSerializer(sid, ws.writers[key[0]][sid]) for key, sid in ids.items()}
    rng, rows = random.Random(1), []
    for offset, e in enumerate(events):
        serialize = (
            serializers.get((e.family, e.version)) or serializers[max(k for k in serializers if k[0] == e.family)]
        )
        value = serialize(e.record)
        if e.category == "schema":
            value = faults.break_bytes(e.rule, value, rng)
        appended = kafka_time(e) if kafka_time else dt.datetime.now(dt.UTC)
        rows.append(
            (
                e.key.encode(),
                value,
                ws.topics[e.family],
                0,
                offset,
                appended,
                1,
                [("produced_at", str(int(appended.timestamp() * 1e6)).encode())],
            )
        )
    return rows
