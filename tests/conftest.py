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

from tests.fixtures.workers import apply_worker_environment, max_workers, stacks_per_worker

apply_worker_environment()  # worker gw1 and later: a stack of its own (tests/fixtures/workers.py)

pytest_plugins = [
    "tests.fixtures.stack",
    "tests.fixtures.database",
    "tests.fixtures.kafka",
    "tests.fixtures.pipeline",
    "tests.fixtures.spark",
    "tests.fixtures.alerts",
]


def pytest_configure(config):
    """A stack per worker needs a port range per worker: more workers than that is one line and exit code 2, before
    any worker starts."""
    workers = getattr(config.option, "numprocesses", None) or 0
    if isinstance(workers, int) and workers > max_workers() and stacks_per_worker():
        pytest.exit(f"-n {workers}: at most {max_workers()} pytest workers, each with a stack of its own", 2)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own, which reads the groups
def pytest_collection_modifyitems(items):
    """Integration tests restart their stack's services on purpose, so a file's tests run in one group, in order, on
    one worker (pytest-xdist, `--dist loadgroup`); each worker has a stack of its own (tests/fixtures/workers.py),
    so two files run at once on two stacks. When the session points at services of its own, all of them are one
    group instead. Tests marked ``own_services`` start what they need and go anywhere. The unit tests that need a
    SparkSession share one worker, so that only one session starts."""
    per_worker = stacks_per_worker()
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
            if item.get_closest_marker("own_services") is None:
                item.add_marker(pytest.mark.xdist_group(f"stack-{item.path.stem}" if per_worker else "stack"))
        elif "spark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("spark"))


def pytest_collection_finish(session):
    """The grouping above is what keeps two workers off the stack at once: if pytest-xdist did not apply it (as on
    pytest 9.2, pytest-dev/pytest-xdist#1386), the run stops here rather than racing two stacks on one port."""
    if os.environ.get("PYTEST_XDIST_WORKER") and session.config.getvalue("loadgroup"):
        ungrouped = [i.nodeid for i in session.items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
        if ungrouped:
            pytest.exit(
                f"pytest-xdist did not group {ungrouped[0]}: run with PYTEST_WORKERS=0, or a pytest it supports", 2
            )
