"""Integration tier: real Kafka, registry, PostgreSQL and Prometheus.

The stack is started once per test session (or reused when it already runs, or when
SHOPSTREAM_BOOTSTRAP_SERVERS / SHOPSTREAM_SCHEMA_REGISTRY_URL point at existing
services) and stopped at the end only if this session started it.
"""

from __future__ import annotations

import uuid

import pytest

from core import kafka
from core.settings import Settings
from infra.runtime import stack


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def running_stack(settings):
    started = stack.up(settings)
    yield settings
    if started:
        stack.down(settings)


@pytest.fixture(scope="session")
def running_postgres(settings):
    """PostgreSQL alone, for tests that need nothing else (the sink's)."""
    started = stack.up(settings, only=["postgres"])
    yield settings
    if started:
        stack.down_services(settings, started)


@pytest.fixture
def database(running_postgres, unique_name):
    """Settings whose database is this test's alone, migrated; dropped after it."""
    from db.migrate import migrate
    from infra.runtime.services.postgres import create_database, drop_database

    settings = running_postgres.model_copy(update={"postgres_db": f"test_{unique_name}"})
    create_database(settings, settings.postgres_db)
    migrate(settings)
    yield settings
    drop_database(settings, settings.postgres_db)


@pytest.fixture
def unique_name() -> str:
    """A fresh name for topics, tables and subjects, so tests never share state."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def isolated(running_stack, unique_name):
    """Settings whose topics (created from the spec) are this test's alone; deleted after it."""
    from infra.topics import delete_topics, ensure_topics, load_topic_specs

    isolated = running_stack.model_copy(update={"topic_prefix": unique_name})
    specs = load_topic_specs()
    ensure_topics(isolated, isolated.topic_prefix, specs)
    yield isolated
    delete_topics(isolated, isolated.topic_prefix, specs)


def consume_all(settings, topics: list[str], timeout: float = 60.0) -> list:
    """Every message on ``topics`` from the beginning to the current end offsets."""
    import time

    from confluent_kafka import TopicPartition

    consumer = kafka.consumer(settings, f"reader-{uuid.uuid4().hex}", {"enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        meta = consumer.list_topics(timeout=10)
        ends = {}
        for topic in topics:
            for p in meta.topics[topic].partitions:
                ends[(topic, p)] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        consumer.assign([TopicPartition(t, p, 0) for (t, p) in ends])
        remaining = {tp for tp, end in ends.items() if end > 0}
        messages = []
        deadline = time.monotonic() + timeout
        while remaining and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=1):
                if msg.error():
                    continue
                messages.append(msg)
                if msg.offset() >= ends[(msg.topic(), msg.partition())] - 1:
                    remaining.discard((msg.topic(), msg.partition()))
        assert not remaining, f"did not reach the end of {remaining}"
        return messages
    finally:
        consumer.close()


@pytest.fixture
def pipeline_env(isolated, tmp_path):
    """Settings with their own topics AND their own migrated database; plus stream options
    with their own pipeline name and checkpoint."""
    from core.settings import StreamOptions
    from db.migrate import migrate
    from infra.runtime.services.postgres import create_database, drop_database

    settings = isolated.model_copy(update={"postgres_db": f"test_{isolated.topic_prefix}"})
    create_database(settings, settings.postgres_db)
    migrate(settings)
    options = StreamOptions(master="local[2]", pipeline=isolated.topic_prefix, trigger_s=0.5,
                            checkpoint_dir=tmp_path / "checkpoint", driver_memory="1g")
    yield settings, options
    drop_database(settings, settings.postgres_db)
