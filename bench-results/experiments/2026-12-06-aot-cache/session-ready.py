"""Seconds from the first import to a local Spark session that has run a small aggregation.

EXTRA: the driver's extra Java options (an archive's); TRAIN=1: close the gateway afterwards, so that the JVM exits
and writes the archive its options ask for. For example:

JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64 TRAIN=1 EXTRA=-XX:AOTCacheOutput=/tmp/aot/s.aot python session-ready.py
JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64 EXTRA="-XX:AOTCache=/tmp/aot/s.aot -Xlog:aot=off" python session-ready.py
"""

import os
import time

start = time.monotonic()
from pyspark.sql import SparkSession  # noqa: E402  (the import is part of what is timed)

extra = os.environ.get("EXTRA", "")
spark = (
    SparkSession.builder.master("local[2]")
    .config("spark.ui.enabled", "false")
    .config("spark.driver.memory", os.environ.get("MEM", "1g"))
    .config("spark.driver.extraJavaOptions", f"-XX:-DontCompileHugeMethods {extra}".strip())
    .getOrCreate()
)
spark.range(100000).selectExpr("id % 7 AS k", "id").groupBy("k").count().collect()
print(f"{time.monotonic() - start:.2f}", flush=True)
if os.environ.get("TRAIN"):
    gateway = spark.sparkContext._gateway
    spark.stop()
    gateway.shutdown()
    gateway.proc.stdin.close()
    gateway.proc.wait(300)
