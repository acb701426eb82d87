"""`shopstream stream`: the Spark Structured Streaming job, from Kafka to PostgreSQL.

Kafka source (with backpressure and failOnDataLoss) -> foreachBatch(BatchWriter). A
restarted job resumes from its checkpoint; a job with a new checkpoint resumes from
the newest offsets in the ledger, not from the start of the topics.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from db.maintenance import Maintenance
from infra.runtime import jvm
from infra.settings import Settings, StreamOptions
from monitoring.metrics import serve_metrics
from streaming.batch import BatchWriter
from streaming.decode import WriterSchemas, load_writer_schemas
from streaming.exceptions import StreamingError
from streaming import sql
from streaming.sink import ledger_offsets
from streaming.transform import sink_rows

log = logging.getLogger(__name__)
STREAM_STAGES = ("queue", "process", "db_write", "end_to_end")


def build_spark(settings: Settings, options: StreamOptions):
    from pyspark.sql import SparkSession

    jars = sorted(str(p) for p in jvm.ensure_fetched(jvm.SPARK, settings.runtime_dir).glob("*.jar"))
    java = jvm.find_java(17, "Spark")
    os.environ.setdefault("JAVA_HOME", str(Path(java.path).parents[1]))
    builder = SparkSession.builder
    if options.master.startswith("local"):
        # Stay on loopback: otherwise Spark binds the driver to the first non-loopback interface.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
    spark = (builder.master(options.master).appName(f"shopstream-{options.pipeline}")
             .config("spark.jars", ",".join(jars))
             .config("spark.driver.memory", options.driver_memory)
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.shuffle.partitions", str(options.shuffle_partitions))
             .config("spark.ui.enabled", str(options.ui).lower())
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.execution.arrow.pyspark.enabled", "true")
             .config("spark.sql.streaming.minBatchesToRetain", "20")
             # streaming.decode reads the produced_at header through a map: a record that
             # repeats a header key must not fail the batch (the last one wins).
             .config("spark.sql.mapKeyDedupPolicy", "LAST_WIN")
             # The offsets and commits logs are written twice per micro-batch. Spark's default
             # (FileContext) manager creates each file with an explicit permission, and
             # without Hadoop's native library that forks `chmod` (and `readlink`) from the
             # JVM; Hadoop's checksummed local FS doubles it with a .crc file. The FileSystem
             # manager on the raw local FS writes and renames without forking: walCommit +
             # commitOffsets went from 88 + 57 ms to 12 + 7 ms a batch at 10,000 ev/s. Files
             # are still written to a temporary name and renamed (atomic on a local FS).
             .config("spark.hadoop.fs.file.impl", "org.apache.hadoop.fs.RawLocalFileSystem")
             .config("spark.sql.streaming.checkpointFileManagerClass",
                     "org.apache.spark.sql.execution.streaming.checkpointing.FileSystemBasedCheckpointFileManager"))
    spark = spark.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def warm_up(spark, schemas: WriterSchemas, events: int = 4000, rounds: int = 3) -> float:
    """Run the sink transformation on generated events before the query starts.

    The first micro-batches otherwise pay for code generation and JIT compilation, and
    every event produced meanwhile queues behind them. The events are the producer's own
    mix (every schema version, valid and broken records), encoded with the registered
    writer schemas, so every decode, rule and formatting path is compiled. Nothing is
    written: the rows are computed and dropped.
    """
    started = time.monotonic()
    # Not cached: a row scan feeds the same generated code as the Kafka source, so the
    # classes compiled (and JIT-warmed) here are the ones the stream reuses.
    from streaming.samples import KAFKA_ROW_SCHEMA, generated_events, kafka_source_rows

    df = spark.createDataFrame(kafka_source_rows(schemas, generated_events(events)), KAFKA_ROW_SCHEMA)
    for _ in range(rounds):
        sink_rows(df, schemas).toArrow()
    return time.monotonic() - started


def phase_listener(metrics):
    """A StreamingQueryListener that exports each micro-batch's phase durations."""
    from pyspark.sql.streaming import StreamingQueryListener

    class PhaseListener(StreamingQueryListener):
        def onQueryStarted(self, event):
            pass

        def onQueryProgress(self, event):
            for phase, ms in (event.progress.durationMs or {}).items():
                metrics.batch_phase.labels(phase=phase).observe(ms / 1000)

        def onQueryIdle(self, event):
            pass

        def onQueryTerminated(self, event):
            pass

    return PhaseListener()


@dataclass
class StreamResult:
    batches: int
    records_in: int
    stored: int
    duplicates: int
    quarantined: int
    late: int
    seconds: float


def _starting_offsets(settings: Settings, options: StreamOptions, topics: list[str]) -> str:
    """'earliest', or the ledger's newest offsets when the checkpoint is new but the pipeline is not."""
    import psycopg2

    with psycopg2.connect(settings.postgres_dsn("writer")) as conn, conn.cursor() as cur:
        latest = ledger_offsets(cur, sql.LATEST_OFFSETS, options.pipeline)
    conn.close()
    if not latest:
        return "earliest"
    offsets = {t: {p: int(latest.get(t, {}).get(p, -2)) for p in parts}   # -2: earliest, for a new partition
               for t, parts in log_end_offsets(settings, topics).items()}
    log.info("new checkpoint: resuming %s from the ledger's offsets", options.pipeline)
    return json.dumps(offsets)


def log_end_offsets(settings: Settings, topics: list[str]) -> dict[str, dict[str, int]]:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "shopstream-probe"})
    try:
        meta = consumer.list_topics(timeout=10)
        return {t: {str(p): consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
                    for p in meta.topics[t].partitions} for t in topics}
    finally:
        consumer.close()


def caught_up(committed: dict, ends: dict) -> bool:
    return all(committed.get(t, {}).get(p, 0) >= end for t, parts in ends.items() for p, end in parts.items())


def run(settings: Settings, options: StreamOptions, metrics_port: int | None = None,
        stop: threading.Event | None = None, progress: Callable[[dict], None] | None = None) -> StreamResult:
    stop = stop or threading.Event()
    metrics = serve_metrics(metrics_port, STREAM_STAGES, "stream_metrics_port")
    schemas = load_writer_schemas(settings)
    topics = list(schemas.topics.values())
    checkpoint = options.checkpoint(settings)
    starting = "earliest" if (checkpoint / "metadata").exists() else _starting_offsets(settings, options, topics)
    spark = build_spark(settings, options)
    log.info("warm-up took %.1f s", warm_up(spark, schemas))
    spark.streams.addListener(phase_listener(metrics))
    maintenance = Maintenance(settings, options.rollup_refresh_s)
    maintenance.start()
    writer = BatchWriter(settings, options, schemas, metrics, checkpoint)
    source = (spark.readStream.format("kafka")
              .option("kafka.bootstrap.servers", settings.kafka_bootstrap)
              .option("subscribe", ",".join(topics))
              .option("startingOffsets", starting)
              .option("maxOffsetsPerTrigger", options.max_offsets_per_trigger)
              .option("failOnDataLoss", "true")
              .option("includeHeaders", "true")
              .load())
    stream = sink_rows(source, schemas).writeStream.foreachBatch(writer).option("checkpointLocation", str(checkpoint))
    stream = stream.trigger(processingTime=f"{options.trigger_s} seconds") if options.trigger_s else stream
    previous = {}
    if threading.current_thread() is threading.main_thread():
        def request_stop(signum, frame):
            log.info("signal %s: stopping after the current batch", signal.Signals(signum).name)
            stop.set()
        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    query = stream.start()
    if options.ready_file:
        options.ready_file.touch()
    idle_since = None
    try:
        while query.isActive:
            query.awaitTermination(0.5)
            if progress:
                progress(dict(writer.totals))
            if options.stop_when_idle_s and not stop.is_set():
                if writer.committed_offsets and caught_up(writer.committed_offsets, log_end_offsets(settings, topics)):
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since >= options.stop_when_idle_s:
                        stop.set()
                else:
                    idle_since = None
            if stop.is_set():
                while query.status["isTriggerActive"]:
                    time.sleep(0.05)
                query.stop()
        if query.exception() is not None:
            raise StreamingError(f"the streaming query failed: {_first_line(str(query.exception()))}")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        maintenance.stop()
        writer.close()
    t = writer.totals
    return StreamResult(t["batches"], t["records_in"], t["stored"], t["duplicates"], t["quarantined"], t["late"],
                        time.monotonic() - started)


def _first_line(text: str) -> str:
    return next((ln for ln in text.splitlines() if ln.strip()), text)[:500]
