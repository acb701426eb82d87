"""Seconds from the first import to a local Spark session that has run a small aggregation.
EXTRA: extra driver java options. TRAIN=1: close the gateway so that the JVM exits and writes its cache."""
import os, time
start = time.monotonic()
from pyspark.sql import SparkSession
extra = os.environ.get("EXTRA", "")
spark = (
    SparkSession.builder.master("local[2]")
    .config("spark.ui.enabled", "false").config("spark.driver.memory", os.environ.get("MEM", "1g"))
    .config("spark.driver.extraJavaOptions", ("-XX:-DontCompileHugeMethods " + extra).strip())
    .getOrCreate()
)
spark.range(100000).selectExpr("id % 7 AS k", "id").groupBy("k").count().collect()
print(f"{time.monotonic() - start:.2f}", flush=True)
if os.environ.get("TRAIN"):
    gateway = spark.sparkContext._gateway
    spark.stop(); gateway.shutdown(); gateway.proc.stdin.close(); gateway.proc.wait(300)
