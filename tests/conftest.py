"""Fixtures from tests/fixtures/, one module per concern, for both tiers."""

import os

import pytest

# The fault tests stop and start services themselves, so the services' watchdog stays off in
# this session (children inherit it); tests/integration/infra/test_watchdog.py runs its own.
os.environ["SHOPSTREAM_WATCHDOG"] = "false"

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
