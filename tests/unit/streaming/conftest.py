"""A local SparkSession with the Avro connector: no services, just the JVM."""

import pytest

from infra.settings import Settings, StreamOptions


@pytest.fixture(scope="session")
def spark():
    from streaming.job import build_spark

    session = build_spark(Settings(), StreamOptions(master="local[2]", driver_memory="1g"))
    yield session
    session.stop()
