"""The PostgreSQL sink: everything one micro-batch produced, in ONE transaction.

Facts, KPI upserts, quarantine rows and the ledger row commit together or not at all.
A batch the ledger already holds is skipped, so a batch Spark replays after a crash
writes nothing twice; fact inserts also use ON CONFLICT DO NOTHING on
(event_time, event_id), which catches a producer that re-sent an event.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import psycopg2
from psycopg2.extensions import connection, cursor
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay

from core.database import ENSURE_PARTITIONS, PERMANENT_CONNECT_ERRORS, open_connection
from core.kafka import Offsets
from core.retry import SINK_BATCH
from core.settings import Settings
from streaming import sql
from streaming.exceptions import DeadLetterUnavailable, StagingMismatch
from streaming.lease import FENCE, Fenced

T = TypeVar("T")

log = logging.getLogger(__name__)

KINDS = ("click", "order", "line", "quarantine", "redrive")
#: The kinds whose rows each stand for one record read (with its topic, partition and offset): all but an order's
#: lines. A re-driven record that passed has two (its fact and its re-drive outcome).
RECORD_KINDS = ("click", "order", "quarantine", "redrive")

#: Records per (topic, partition).
PartitionCounts = dict[tuple[str, int], int]


@dataclass
class BatchOutcome:
    batch_id: int
    skipped: bool
    records_in: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    late: int = 0  # stored events that reached Kafka late
    begun_at: float = 0.0  # epoch seconds: transaction began
    committed_at: float = 0.0  # epoch seconds: COMMIT returned
    new_quarantine: frozenset = frozenset()  # (topic, partition, offset) as text: quarantined by this batch
    resolved: int = 0  # re-driven dead letters that passed: their first quarantine row resolved
    failed_again: int = 0  # re-driven dead letters that failed again (no second row)


def is_transient(exc: BaseException) -> bool:
    """A fault that a reconnect and a retry can ride out: the server or the network went
    away, the session was terminated, a serialization race was lost, the disk is full,
    or the dead-letter topic did not answer. Bad credentials (SQLSTATE class 28), a
    missing database (3D) and anything a bug causes (a missing table, a broken
    constraint) are permanent: retrying would only hide them."""
    if isinstance(exc, DeadLetterUnavailable | psycopg2.InterfaceError):
        return True
    if isinstance(exc, psycopg2.OperationalError):  # includes AdminShutdown, SerializationFailure, DiskFull
        if exc.pgcode is None:  # failed to connect: libpq gives a message, not a SQLSTATE
            return not any(text in str(exc) for text in PERMANENT_CONNECT_ERRORS)
        return not exc.pgcode.startswith(("28", "3D"))
    return False


@dataclass(frozen=True)
class Read:
    """What one batch read: its records per partition (as the driver handed them over) and its offset range."""

    records: PartitionCounts
    start: Offsets  # empty when Spark no longer keeps the previous batch's offsets
    end: Offsets


def staging_problems(staged: list[tuple], read: Read) -> list[str]:
    """Where the staging tables disagree with what the batch read: ``staged`` rows are (topic, partition, rows,
    lowest offset, highest offset), STAGED_BY_PARTITION's. Per partition, the rows staged must be the rows handed
    over, and their offsets must lie in the batch's range: a batch whose staged rows went missing (or came from
    elsewhere) never commits, empty or not."""
    problems = []
    found = {(topic, int(part)): (int(n), int(low), int(high)) for topic, part, n, low, high in staged}
    for key in sorted(found.keys() | read.records.keys()):
        topic, part = key
        n, low, high = found.get(key, (0, 0, 0))
        if n != read.records.get(key, 0):
            problems.append(f"{topic}/{part}: {n} rows staged of the {read.records.get(key, 0)} read")
            continue
        start, end = read.start.get(topic, {}).get(part), read.end.get(topic, {}).get(part)
        if n and ((start is not None and low < start) or end is None or high >= end):
            problems.append(f"{topic}/{part}: offsets {low}-{high} staged, outside the batch's range {start}-{end}")
    return problems


class PostgresSink:
    """The sink's connection and its one-transaction write, retried through transient faults.

    A retry reconnects (the staging tables live with the connection) and runs the whole
    batch again; the ledger check at its start makes that exactly-once, including when
    a COMMIT went through but its answer was lost. A permanent error, or a transient one
    that outlasts ``retry_for_s``, is raised.
    """

    def __init__(
        self,
        settings: Settings,
        pipeline: str,
        retry_for_s: float = 300.0,
        on_retry: Callable[[str], None] | None = None,
        on_recovered: Callable[[], None] | None = None,
        fence: tuple[str, int] | None = None,
        session_name: str | None = None,
    ):
        """``pipeline`` is "name:checkpoint query id", so a new checkpoint never matches an old ledger. ``fence``:
        the lease (pipeline name, epoch) this driver holds; a batch commits only while that epoch is the lease's
        (streaming.lease). ``session_name``: the connection's application_name (a takeover ends it by that name)."""
        self.settings, self.pipeline, self.retry_for_s = settings, pipeline, retry_for_s
        self.fence, self.session_name = fence, session_name
        self.on_retry, self.on_recovered = on_retry, on_recovered
        self.conn: connection | None = None
        self._retrying(lambda: None)

    def _connect(self) -> None:
        conn = open_connection(self.settings, "writer", application_name=self.session_name)
        with conn, conn.cursor() as cur:
            cur.execute(sql.CREATE_STAGING)
            cur.execute(ENSURE_PARTITIONS, (None,))
        self.conn = conn

    def _disconnect(self) -> None:
        if self.conn is not None and not self.conn.closed:
            with contextlib.suppress(psycopg2.Error):
                self.conn.close()
        self.conn = None

    def _retrying(self, work: Callable[[], T]) -> T:
        failed = False

        def before_sleep(state: RetryCallState) -> None:
            nonlocal failed
            failed = True
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "sink: %s (attempt %d, retrying in %.1f s): %s",
                type(exc).__name__,
                state.attempt_number,
                state.upcoming_sleep,
                _first_line(exc),
            )
            self._disconnect()
            if self.on_retry:
                self.on_retry(type(exc).__name__)

        for attempt in Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_delay(self.retry_for_s),
            wait=SINK_BATCH.tenacity(),
            before_sleep=before_sleep,
            reraise=True,
        ):
            with attempt:
                if self.conn is None or self.conn.closed:
                    self._connect()
                result = work()
        if failed:
            log.info("sink: recovered")
            if self.on_recovered:
                self.on_recovered()
        return result

    def close(self) -> None:
        self._disconnect()

    def _live(self) -> connection:
        """The connection ``_retrying`` opened before calling its work."""
        if self.conn is None:
            raise psycopg2.InterfaceError("the sink is not connected")
        return self.conn

    def already_written(self, batch_id: int) -> bool:
        def check() -> bool:
            conn = self._live()
            with conn, conn.cursor() as cur:
                if self.fence is not None:  # a driver that lost its lease goes no further, skipped batch or not
                    self._check_fence(cur, *self.fence)
                cur.execute(sql.LEDGER_HAS_BATCH, (self.pipeline, batch_id))
                return cur.fetchone() is not None

        return self._retrying(check)

    def write(
        self,
        batch_id: int,
        lines: dict[str, bytes],
        end_offsets: dict,
        late_after_s: float = 5.0,
        picked_up_at: float | None = None,
        before_commit=None,
        replay: bool = False,
        read: Read | None = None,
    ) -> BatchOutcome:
        """Write one batch, retried through transient faults. ``lines`` maps a kind to its
        CSV rows (newline-terminated); ``replay`` is recorded in the ledger.

        ``before_commit`` runs inside the transaction, after every insert succeeded and
        before COMMIT, with the source coordinates this batch quarantined for the first time
        (the dead-letter publish); if it raises, nothing is committed.

        ``read``: what the batch read, checked against what was staged before anything is inserted (StagingMismatch).
        """
        return self._retrying(
            lambda: self._write_once(
                batch_id, lines, end_offsets, late_after_s, picked_up_at, before_commit, replay, read
            )
        )

    def _write_once(
        self,
        batch_id: int,
        lines: dict[str, bytes],
        end_offsets: dict,
        late_after_s: float,
        picked_up_at: float | None,
        before_commit,
        replay: bool,
        read: Read | None,
    ) -> BatchOutcome:
        begun = time.time()
        conn = self._live()
        try:
            with conn.cursor() as cur:
                cur.execute(sql.LEDGER_HAS_BATCH, (self.pipeline, batch_id))
                if cur.fetchone():
                    if self.fence is not None:
                        self._check_fence(cur, *self.fence)
                    conn.rollback()
                    return BatchOutcome(batch_id, skipped=True)
                for kind in KINDS:
                    if lines.get(kind):
                        cur.copy_expert(sql.COPY[kind], io.BytesIO(lines[kind]))
                if read is not None:
                    cur.execute(sql.STAGED_BY_PARTITION)
                    if problems := staging_problems(cur.fetchall(), read):
                        raise StagingMismatch(f"batch {batch_id} is not committed: {'; '.join(problems[:5])}")
                batch = {"batch_id": batch_id, "late_after": dt.timedelta(seconds=late_after_s)}
                cur.execute(sql.INSERT_CLICKS, batch)
                clicks_new, clicks_staged, clicks_late = _row(cur)
                cur.execute(sql.INSERT_ORDERS, batch)
                orders_new, orders_staged, orders_late = _row(cur)
                late = clicks_late + orders_late
                cur.execute(sql.INSERT_QUARANTINE, batch)
                new_quarantine = frozenset((t, str(p), str(o)) for t, p, o in cur.fetchall())
                quarantined = len(new_quarantine)
                quarantine_staged = lines.get("quarantine", b"").count(b"\n")
                resolved = failed_again = failed_attempts = 0
                if lines.get("redrive"):
                    cur.execute(sql.APPLY_REDRIVES)
                    resolved, failed_again, failed_attempts = _row(cur)
                records_in = clicks_staged + orders_staged + quarantine_staged + failed_attempts
                stored = clicks_new + orders_new
                duplicates = clicks_staged + orders_staged - stored
                if self.fence is not None:
                    self._check_fence(cur, *self.fence)
                if before_commit is not None:
                    before_commit(new_quarantine)
                # The ledger row is the last statement before COMMIT, so its committed_at
                # (the server's clock) trails the real commit by the COMMIT's WAL flush alone.
                cur.execute(
                    sql.INSERT_LEDGER,
                    (
                        self.pipeline,
                        batch_id,
                        json.dumps(end_offsets),
                        records_in,
                        stored,
                        duplicates,
                        quarantined,
                        late,
                        _ts(picked_up_at or begun),
                        _ts(begun),
                        replay,
                    ),
                )
            conn.commit()
            committed = time.time()  # the metrics observe the commit itself, after it returned
        except BaseException:
            if not conn.closed:
                try:
                    conn.rollback()
                except psycopg2.Error:
                    self._disconnect()  # the connection broke: the retry reconnects
            raise
        return BatchOutcome(
            batch_id,
            False,
            records_in,
            stored,
            duplicates,
            quarantined,
            late,
            begun,
            committed,
            new_quarantine,
            resolved,
            failed_again,
        )

    @staticmethod
    def _check_fence(cur: cursor, pipeline: str, epoch: int) -> None:
        """Refuse the commit unless this driver's epoch is still the lease's; the row lock taken here makes a
        takeover wait for this transaction's end."""
        cur.execute(FENCE, (pipeline,))
        row = cur.fetchone()
        if row is None or row[0] != epoch:
            raise Fenced(
                f"the lease of {pipeline} is at epoch {row[0] if row else 'none'}, this driver's is {epoch}: "
                "another driver took over; this batch is not committed"
            )


def _first_line(exc: BaseException | None) -> str:
    return next((line for line in str(exc).splitlines() if line.strip()), repr(exc))[:300]


def _ts(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def _row(cur: cursor) -> tuple:
    """The one row a statement with RETURNING or an aggregate always gives."""
    row = cur.fetchone()
    if row is None:
        raise psycopg2.ProgrammingError("the statement returned no row")
    return row
