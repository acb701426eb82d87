"""The foreachBatch function: one micro-batch from Kafka rows to one committed transaction."""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.kafka import Offsets
from core.metrics import Metrics, observe_many
from core.settings import Settings
from streaming.dead_letter import DeadLetterPublisher, QuarantineRow, parse_quarantine
from streaming.decode import SchemaWatch, WriterSchemas
from streaming.exceptions import SchemasChanged
from streaming.lease import Fenced, Lease
from streaming.offsets import GroupOffsetMirror, batch_end_offsets, batch_start_offsets, behind, checkpoint_query_id
from streaming.options import StreamOptions
from streaming.sink import KINDS, RECORD_KINDS, BatchOutcome, PartitionCounts, PostgresSink, Read

log = logging.getLogger(__name__)


def newline_terminated(rows: pa.ChunkedArray) -> bytes:
    """The rows as one block of UTF-8, each ended by a newline, joined in Arrow's buffers: no Python string per row
    (2-5x quicker than ``"\\n".join(to_pylist())`` for 200,000 CSV rows)."""
    if len(rows) == 0:
        return b""
    if rows.null_count:  # every output row of streaming.transform.sink_rows has its CSV line
        raise ValueError(f"{rows.null_count} of the batch's {len(rows)} sink rows have no CSV line")
    empty, newline = pa.scalar("", rows.type), pa.scalar("\n", rows.type)
    ended = pc.binary_join_element_wise(rows, empty, newline).combine_chunks()  # each row + "\n" + ""
    width = np.int64 if pa.types.is_large_string(ended.type) else np.int32
    offsets = np.frombuffer(
        ended.buffers()[1], dtype=width, count=len(ended) + 1, offset=ended.offset * width().itemsize
    )
    return bytes(memoryview(ended.buffers()[2])[offsets[0] : offsets[-1]])


@dataclass
class Prepared:
    """One batch as the driver handed it to the sink: its CSV lines by kind and what goes with them."""

    batch_id: int
    lines: dict[str, bytes]
    read: Read
    replay: bool
    quarantined: list[QuarantineRow]
    kafka_us: np.ndarray  # each record's Kafka timestamp
    event_us: np.ndarray  # each stored fact's event time
    started: float  # epoch seconds: the batch reached foreachBatch
    computed: float  # epoch seconds: Spark's work for it was done


def records_by_partition(table: pa.Table) -> PartitionCounts:
    """The rows that stand for a record read (RECORD_KINDS), per (topic, partition)."""
    records = table.filter(pc.is_in(table.column("kind"), pa.array(RECORD_KINDS)))
    counts = records.group_by(["topic", "partition"]).aggregate([([], "count_all")])
    return {
        (topic, int(part)): int(n)
        for topic, part, n in zip(
            counts.column("topic").to_pylist(),
            counts.column("partition").to_pylist(),
            counts.column("count_all").to_pylist(),
            strict=True,
        )
    }


class BatchWriter:
    """Callable handed to ``writeStream.foreachBatch``; runs in the driver.

    With ``options.overlap_sink`` (the default) the sink commits a batch in a thread of its own while Spark runs the
    next one: ``foreachBatch(N)`` collects N, waits for N-1's commit (raising its failure), hands N to the thread and
    returns. Spark may then log ``commits/N`` before N is in the database, so the ledger is the resume point: before
    every start of the query the checkpoint is rewound to it (streaming.checkpoint; docs/architecture.md, "An
    overlapped sink")."""

    def __init__(
        self,
        settings: Settings,
        options: StreamOptions,
        schemas: WriterSchemas,
        metrics: Metrics,
        checkpoint: Path,
        mark: Offsets | None = None,
        group_at: Offsets | None = None,
        lease: Lease | None = None,
    ):
        """``mark``: how far the pipeline had read when the job started (the ledger's resume point; for a bounded
        replay, the live pipeline's): a batch that starts below it is a replay. ``group_at``: where the consumer
        group should be (see GroupOffsetMirror)."""
        self.settings, self.options, self.schemas, self.metrics = settings, options, schemas, metrics
        self.checkpoint, self.lease = checkpoint, lease
        self.fenced = False  # the database refused a commit: another driver holds the lease
        self.mark = mark or {}
        self.sink: PostgresSink | None = None
        self.mirror = GroupOffsetMirror(settings, options.pipeline, group_at)
        self.dead_letter = DeadLetterPublisher(settings, settings.topic("dead-letter")) if options.dead_letter else None
        self.schema_watch = SchemaWatch(settings)
        self.new_schemas: WriterSchemas | None = None  # set when a batch needs them: the query restarts with them
        self.committed_offsets: Offsets = {}
        self.last_commit_at: float | None = None  # Unix time
        self.last_outcome: BatchOutcome | None = None
        self.totals = {"batches": 0, "records_in": 0, "stored": 0, "duplicates": 0, "quarantined": 0, "late": 0}
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink-commit")
        self._in_flight: Future | None = None  # the batch the committer has, until its outcome is taken

    def close(self) -> None:
        self.drain()
        self._committer.shutdown()
        if self.sink:
            self.sink.close()
        self.mirror.close()

    def __call__(self, df, batch_id: int) -> None:
        try:
            self._write(df, batch_id)
        except Fenced as exc:
            self._refused(batch_id, exc)
            raise

    def _refused(self, batch_id: int, exc: Fenced) -> None:
        self.fenced = True
        self.metrics.fenced.inc()
        log.warning("batch %d refused: %s", batch_id, exc)

    def wait(self) -> None:
        """Wait for the batch in flight to commit; raise its failure."""
        future, self._in_flight = self._in_flight, None
        if future is not None:
            future.result()

    def drain(self) -> BaseException | None:
        """Wait for the batch in flight, before the query starts again or the job stops; its failure, logged, not
        raised (the batch is run again from the ledger at the next start)."""
        try:
            self.wait()
        except Exception as exc:  # noqa: BLE001 - returned to the caller, which decides
            if not isinstance(exc, Fenced):
                log.warning(
                    "the last batch handed to the sink did not commit (it runs again at the next start): %s", exc
                )
            return exc
        return None

    def _write(self, df, batch_id: int) -> None:
        started = time.time()
        if self.sink is None:
            self.sink = self._open_sink()
        end_offsets = batch_end_offsets(self.checkpoint, batch_id)
        if self._in_flight is None and self.sink.already_written(batch_id):  # nothing in flight: the sink is free
            log.info("batch %d is already in the ledger: skipped (replay after a restart)", batch_id)
            self.metrics.batches.labels(outcome="skipped").inc()
            self._after_commit(end_offsets)
            return
        table = df.toArrow()  # Spark's work (while the previous batch commits); in sink form: see transform.sink_rows
        computed = time.time()
        kind = table.column("kind")
        lines = {k: newline_terminated(table.filter(pc.equal(kind, k)).column("line")) for k in KINDS}
        facts = table.filter(pc.is_valid(table.column("event_time_us")))
        records = table.filter(pc.is_in(kind, pa.array(["click", "order", "quarantine"])))  # one row per record
        quarantined = parse_quarantine(lines["quarantine"]) if lines["quarantine"] else []
        self._check_schema_ids(batch_id, quarantined)
        start_offsets = batch_start_offsets(self.checkpoint, batch_id)
        batch = Prepared(
            batch_id,
            lines,
            Read(records_by_partition(table), start_offsets, end_offsets),
            behind(start_offsets, self.mark),
            quarantined,
            records.column("kafka_time_us").to_numpy(),
            facts.column("event_time_us").to_numpy(),
            started,
            computed,
        )
        self.wait()  # the previous batch is committed before this one is handed over: one in flight at most
        self._in_flight = self._committer.submit(self._commit, batch)
        if not self.options.overlap_sink:
            self.wait()

    def _commit(self, b: Prepared) -> BatchOutcome:
        """The committer thread's part: the batch's transaction, then what follows a commit."""
        if self.sink is None:
            raise RuntimeError("the sink is opened before a batch is handed over")
        quarantined = b.quarantined

        def publish_dead_letters(new: frozenset) -> None:  # a record quarantined before is not sent again
            rows = [row for row in quarantined if row.source in new]
            if self.dead_letter and rows:
                self.dead_letter.publish(rows)

        try:
            outcome = self.sink.write(
                b.batch_id,
                b.lines,
                b.read.end,
                self.options.late_threshold_s,
                picked_up_at=b.started,
                before_commit=publish_dead_letters,
                replay=b.replay,
                read=b.read,
            )
        except Fenced as exc:
            self._refused(b.batch_id, exc)
            raise
        self.last_outcome = outcome
        log.info(
            "batch %d%s: %d records; spark %.2f s, driver %.2f s, sink %.2f s",
            b.batch_id,
            " (replay)" if b.replay else "",
            outcome.records_in,
            b.computed - b.started,
            outcome.begun_at - b.computed,
            outcome.committed_at - outcome.begun_at,
        )
        self._count(outcome)
        self._observe(outcome, b.started, b.kafka_us, b.event_us, quarantined)
        self._after_commit(b.read.end)
        return outcome

    def adopt_new_schemas(self) -> WriterSchemas:
        """The schemas a batch asked for (see _check_schema_ids), now the writer's own."""
        if self.new_schemas is None:
            raise RuntimeError("no batch asked for new schema versions")
        self.schemas, self.new_schemas = self.new_schemas, None
        return self.schemas

    def _check_schema_ids(self, batch_id: int, quarantined: list[QuarantineRow]) -> None:
        """Before a record is quarantined as ``unknown_schema_id``, ask the registry about its id: a version
        registered after the query started stops the batch uncommitted, to be run again with the new schemas."""
        ids = {row.schema_id for row in quarantined if row.rule == "unknown_schema_id" and row.schema_id is not None}
        if ids and (fresh := self.schema_watch.newly_registered(ids)) is not None:
            self.new_schemas = fresh
            log.info(
                "batch %d holds records of schema versions registered since the query started: restarting "
                "the query with them (planned; the batch is run again)",
                batch_id,
            )
            raise SchemasChanged(f"batch {batch_id} needs schema versions registered since the query started")

    def _open_sink(self) -> PostgresSink:
        m = self.metrics
        retrying_since: list[float] = []  # set while a batch is being retried

        def retrying(reason: str) -> None:
            m.sink_retries.labels(reason=reason).inc()
            if not retrying_since:  # the batch's first failure: when the job saw the fault
                retrying_since.append(time.time())
                m.retry_started.set(retrying_since[0])
            m.sink_retrying.set(1)

        def recovered() -> None:
            retrying_since.clear()
            m.sink_retrying.set(0)

        return PostgresSink(
            self.settings,
            f"{self.options.pipeline}:{checkpoint_query_id(self.checkpoint)}",
            retry_for_s=self.options.sink_retry_s,
            on_retry=retrying,
            on_recovered=recovered,
            fence=(self.lease.pipeline, self.lease.epoch) if self.lease and self.lease.epoch is not None else None,
            session_name=self.lease.session_name() if self.lease else None,
        )

    def _after_commit(self, end_offsets: Offsets) -> None:
        self.last_commit_at = time.time()
        self.metrics.last_commit.set(self.last_commit_at)
        self.committed_offsets = end_offsets
        self.mirror.mirror(end_offsets)
        self.metrics.group_reset.set(int(self.mirror.reset_to is not None))

    def _count(self, o: BatchOutcome) -> None:
        self.totals["batches"] += 1
        for key in ("records_in", "stored", "duplicates", "quarantined", "late"):
            self.totals[key] += getattr(o, key)

    def _observe(self, o: BatchOutcome, started: float, kafka_us, event_us, quarantined: list[QuarantineRow]) -> None:
        m = self.metrics
        m.batches.labels(outcome="committed").inc()
        latency = m.stage_latency
        observe_many(latency.labels(stage="queue"), np.maximum(started - kafka_us / 1e6, 0))
        latency.labels(stage="process").observe(max(o.begun_at - started, 0))
        latency.labels(stage="db_write").observe(max(o.committed_at - o.begun_at, 0))
        observe_many(latency.labels(stage="end_to_end"), np.maximum(o.committed_at - event_us / 1e6, 0))
        m.stage_events.labels(stage="queue").inc(len(kafka_us))
        m.stage_events.labels(stage="process").inc(o.records_in)
        m.stage_events.labels(stage="db_write").inc(o.stored + o.quarantined)
        m.stage_events.labels(stage="end_to_end").inc(len(event_us))
        # Each source record once: a valid one when it is stored, a broken one when it is first quarantined. A
        # duplicate (a producer's re-send, a replay) moves only the duplicates counter.
        m.quality_records.labels(source="stream", category="valid", rule="").inc(o.stored)
        for row in quarantined:
            if row.source in o.new_quarantine:
                m.quality_records.labels(source="stream", category=row.category, rule=row.rule).inc()
        m.duplicates.inc(o.duplicates)
        if o.resolved or o.failed_again:
            m.redriven.labels(outcome="stored").inc(o.resolved)
            m.redriven.labels(outcome="failed_again").inc(o.failed_again)
        m.late_events.inc(o.late)
