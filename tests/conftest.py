"""Fixtures from tests/fixtures/, one module per concern, for both tiers."""

import os

import pytest

from tests.fixtures.ports import give_this_worker_its_own_ports

# The fault tests stop and start services themselves, so the services' watchdog stays off in
# this session (children inherit it); tests/integration/infra/test_watchdog.py runs its own.
os.environ["SHOPSTREAM_WATCHDOG"] = "false"

# `make test` runs the tests that share the stack on two workers: the second gets metrics ports of its own.
give_this_worker_its_own_ports()

pytest_plugins = [
    "tests.fixtures.stack",
    "tests.fixtures.database",
    "tests.fixtures.kafka",
    "tests.fixtures.pipeline",
    "tests.fixtures.spark",
    "tests.fixtures.alerts",
]


def pytest_sessionfinish(session):
    """The services a test session started are stopped once every worker is done: by the controller, or by a
    session without workers."""
    if hasattr(session.config, "workerinput"):
        return
    from core.settings import Settings
    from tests.fixtures.stack import stop_what_tests_started

    stop_what_tests_started(Settings())


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
