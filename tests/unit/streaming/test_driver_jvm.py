"""The driver JVM's own options reach it beside the user's: the suite's C1-only flag (tests/conftest.py, through
`--driver-java-options`) used to replace them, start-up archive included."""

from __future__ import annotations

from streaming.job import JIT_HUGE_METHODS


def test_the_drivers_options_and_the_users_both_reach_the_jvm(spark):
    jvm = spark.sparkContext._jvm
    arguments = list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert JIT_HUGE_METHODS in arguments, arguments
    assert "-XX:TieredStopAtLevel=1" in arguments, arguments  # the user's (here the suite's) own
    archive = [a for a in arguments if a.startswith(("-XX:AOTCache=", "-XX:SharedArchiveFile="))]
    assert len(set(archive)) == 1, arguments  # Spark's start-up archive (made by the fixture if missing)
