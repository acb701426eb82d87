"""The unit tier's own fixture: the default settings, whichever pytest worker runs it."""

import pytest

from tests.fixtures.workers import WORKER_ENVIRONMENT


@pytest.fixture(autouse=True)
def default_settings(monkeypatch):
    """Worker gw1 and later point SHOPSTREAM_* at stacks of their own (tests/fixtures/workers.py); a unit test
    judges the defaults."""
    for name in WORKER_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
