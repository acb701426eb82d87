"""Integration tier: real Kafka, registry, PostgreSQL and Prometheus.

The stack is started once per test session (or reused when it already runs, or when
SHOPSTREAM_BOOTSTRAP_SERVERS / SHOPSTREAM_SCHEMA_REGISTRY_URL point at existing
services) and stopped at the end only if this session started it.
"""

from __future__ import annotations

import uuid

import pytest

from infra.runtime import stack
from infra.settings import Settings


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


@pytest.fixture
def unique_name() -> str:
    """A fresh name for topics, tables and subjects, so tests never share state."""
    return f"t{uuid.uuid4().hex[:10]}"
