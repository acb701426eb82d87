"""The driver JVM's own options reach it beside the user's: the suite's C1-only flag (tests/conftest.py, through
`--driver-java-options`) used to replace them, start-up archive included."""

from __future__ import annotations

import os
import shlex

from streaming.job import JIT_HUGE_METHODS


def test_the_drivers_options_and_the_users_both_reach_the_jvm(spark):
    jvm = spark.sparkContext._jvm
    arguments = list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert JIT_HUGE_METHODS in arguments, arguments
    submit = shlex.split(os.environ["PYSPARK_SUBMIT_ARGS"])  # the suite's own (tests/conftest.py), or the user's
    users = shlex.split(submit[submit.index("--driver-java-options") + 1])
    assert users and all(option in arguments for option in users), (users, arguments)
    archive = [a for a in arguments if a.startswith(("-XX:AOTCache=", "-XX:SharedArchiveFile="))]
    assert len(set(archive)) == 1, arguments  # Spark's start-up archive (made by the fixture if missing)
