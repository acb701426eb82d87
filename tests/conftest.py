"""Fixtures from tests/fixtures/, one module per concern, for both tiers."""

import os

import pytest

# The fault tests stop and start services themselves, so the services' watchdog stays off in
# this session (children inherit it); tests/integration/infra/test_watchdog.py runs its own.
os.environ["SHOPSTREAM_WATCHDOG"] = "false"

# The suite's Spark drivers run without the C2 compiler. A test's job lives a minute or two and handles a few
# thousand events: C2's compiles of Spark's start-up cost more CPU than they give back, on 2 cores shared with
# Kafka, PostgreSQL and the producer (the SIGKILL test, same hour: 160 → 100 CPU-s, 92 → 75 s). The code that
# runs is the same; only how fast it runs differs, and no test asserts that (`shopstream bench` keeps C2).
os.environ.setdefault("PYSPARK_SUBMIT_ARGS", '--driver-java-options "-XX:TieredStopAtLevel=1" pyspark-shell')

pytest_plugins = [
    "tests.fixtures.stack",
    "tests.fixtures.database",
    "tests.fixtures.kafka",
    "tests.fixtures.pipeline",
    "tests.fixtures.spark",
    "tests.fixtures.alerts",
]


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
