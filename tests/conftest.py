"""Fixtures from tests/fixtures/, one module per concern, for both tiers."""

import pytest

pytest_plugins = ["tests.fixtures.stack", "tests.fixtures.database", "tests.fixtures.kafka",
                  "tests.fixtures.pipeline", "tests.fixtures.spark"]


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
