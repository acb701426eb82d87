"""Seconds from the first import to a local Spark session that has run a small aggregation.

for j in java-17-openjdk-amd64 temurin-25-jdk-amd64; do JAVA_HOME=/usr/lib/jvm/$j python session-ready.py; done
"""

import time

start = time.monotonic()
from pyspark.sql import SparkSession  # noqa: E402  (the import is part of what is timed)

spark = (
    SparkSession.builder.master("local[2]")
    .config("spark.ui.enabled", "false")
    .config("spark.driver.extraJavaOptions", "-XX:-DontCompileHugeMethods")
    .getOrCreate()
)
spark.range(100000).selectExpr("id % 7 AS k", "id").groupBy("k").count().collect()
print(f"{time.monotonic() - start:.2f}")
