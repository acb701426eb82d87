"""A local SparkSession with the Avro connector: no services, just the JVM."""

import pytest

from core.settings import Settings, StreamOptions


@pytest.fixture(scope="session")
def spark():
    from infra.runtime.jvm import spark_jars
    from streaming.job import build_spark

    session = build_spark(StreamOptions(master="local[2]", driver_memory="1g"), spark_jars(Settings().runtime_dir))
    yield session
    session.stop()
