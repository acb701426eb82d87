"""`shopstream bench transform`: the Spark transformation alone, on a static batch.

No services: a local Spark session, generated events (the producer's mix, framed with
catalogue schema ids), and ``sink_rows(...).toArrow()`` timed over repetitions. It
separates the per-batch fixed cost (a small batch) from the per-record cost (a large
one), which the live benchmark cannot, and is what the optimisation notes quote.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

from core.settings import Settings
from streaming.options import StreamOptions


@dataclass
class TransformTiming:
    events: int
    output_rows: int
    median_s: float
    min_s: float
    reps: int

    @property
    def events_per_second(self) -> float:
        return round(self.events / self.median_s) if self.median_s else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "events_per_second": self.events_per_second}


def run(sizes: list[int], reps: int, master: str = "local[2]", spark=None) -> list[TransformTiming]:
    from infra.orchestration.samples import catalogue_schemas, generated_events, kafka_source_rows
    from infra.runtime.jvm import spark_jars
    from streaming.job import build_spark, kafka_rows_frame
    from streaming.transform import sink_rows

    own_session = spark is None
    spark = spark or build_spark(StreamOptions(master=master, driver_memory="2g"), spark_jars(Settings().runtime_dir))
    spark.conf.set("spark.sql.adaptive.enabled", "false")  # as in a streaming micro-batch
    ws = catalogue_schemas()
    rows = kafka_source_rows(ws, generated_events(max(sizes)))
    results = []
    try:
        for n in sizes:
            df = kafka_rows_frame(spark, rows[:n]).repartition(2).cache()
            df.count()
            out = sink_rows(df, ws)  # built once, like the streaming plan
            for _ in range(3):
                out.toArrow()  # JIT and code generation
            times, produced = [], 0
            for _ in range(reps):
                started = time.perf_counter()
                produced = out.toArrow().num_rows
                times.append(time.perf_counter() - started)
            results.append(TransformTiming(n, produced, round(statistics.median(times), 4), round(min(times), 4), reps))
            df.unpersist()
    finally:
        spark.conf.unset("spark.sql.adaptive.enabled")
        if own_session:
            spark.stop()
    return results
