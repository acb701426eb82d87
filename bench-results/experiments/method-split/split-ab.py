"""The transformation's time on a static batch with Spark's codegen split threshold at its default and lower,
alternating in one session (issue 27, item 1): does a smaller generated processNext run faster once the JIT can
compile it? Run from the project root: ``.venv/bin/python bench-results/experiments/method-split/split-ab.py``."""

import sys

from core.settings import Settings
from infra.bench.transform import run
from infra.runtime.jvm import spark_jars
from streaming.job import build_spark
from streaming.options import StreamOptions

VALUES = sys.argv[1].split(",") if len(sys.argv) > 1 else ["1024", "256"]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
SIZES = [1000, 20000, 100000]

spark = build_spark(StreamOptions(master="local[2]", driver_memory="2g"), spark_jars(Settings().runtime_dir))
try:
    for r in range(ROUNDS):
        for value in VALUES:
            spark.conf.set("spark.sql.codegen.methodSplitThreshold", value)
            timings = run(SIZES, 15, spark=spark)
            print(
                f"round {r + 1} methodSplitThreshold={value:>5}: "
                + "  ".join(f"{t.events:>7,} ev {t.median_s:.3f} s (min {t.min_s:.3f})" for t in timings),
                flush=True,
            )
finally:
    spark.stop()
