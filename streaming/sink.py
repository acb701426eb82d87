"""The PostgreSQL sink: everything one micro-batch produced, in ONE transaction.

Facts, KPI upserts, quarantine rows and the ledger row commit together or not at all.
A batch the ledger already holds is skipped, so a batch Spark replays after a crash
writes nothing twice; fact inserts also use ON CONFLICT DO NOTHING on
(event_time, event_id), which catches a producer that re-sent an event.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import time
from dataclasses import dataclass

import psycopg2

from core.settings import Settings
from streaming import sql

log = logging.getLogger(__name__)

KINDS = ("click", "order", "line", "quarantine")


@dataclass
class BatchOutcome:
    batch_id: int
    skipped: bool
    records_in: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    late: int = 0               # stored events that reached Kafka late
    begun_at: float = 0.0       # epoch seconds: transaction began
    committed_at: float = 0.0   # epoch seconds: COMMIT returned


class PostgresSink:
    def __init__(self, settings: Settings, pipeline: str):
        """``pipeline`` is "name:checkpoint query id", so a new checkpoint never matches an old ledger."""
        self.pipeline = pipeline
        self.conn = psycopg2.connect(settings.postgres_dsn("writer"))
        with self.conn, self.conn.cursor() as cur:
            cur.execute(sql.CREATE_STAGING)
            cur.execute(sql.ENSURE_PARTITIONS)

    def close(self) -> None:
        self.conn.close()

    def already_written(self, batch_id: int) -> bool:
        with self.conn, self.conn.cursor() as cur:
            cur.execute(sql.LEDGER_HAS_BATCH, (self.pipeline, batch_id))
            return cur.fetchone() is not None

    def write(self, batch_id: int, lines: dict[str, bytes], end_offsets: dict, late_after_s: float = 5.0,
              picked_up_at: float | None = None, before_commit=None) -> BatchOutcome:
        """Write one batch. ``lines`` maps a kind to its CSV rows (newline-terminated).

        ``before_commit`` runs inside the transaction, after every insert succeeded and
        before COMMIT (the dead-letter publish); if it raises, nothing is committed.
        """
        begun = time.time()
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql.LEDGER_HAS_BATCH, (self.pipeline, batch_id))
                if cur.fetchone():
                    self.conn.rollback()
                    return BatchOutcome(batch_id, skipped=True)
                for kind in KINDS:
                    if lines.get(kind):
                        cur.copy_expert(sql.COPY[kind], io.BytesIO(lines[kind]))
                batch = {"batch_id": batch_id, "late_after": dt.timedelta(seconds=late_after_s)}
                cur.execute(sql.INSERT_CLICKS, batch)
                clicks_new, clicks_staged, clicks_late = cur.fetchone()
                cur.execute(sql.INSERT_ORDERS, batch)
                orders_new, orders_staged, orders_late = cur.fetchone()
                late = clicks_late + orders_late
                cur.execute(sql.INSERT_QUARANTINE, batch)
                (quarantined,) = cur.fetchone()
                quarantine_staged = lines.get("quarantine", b"").count(b"\n")
                records_in = clicks_staged + orders_staged + quarantine_staged
                stored = clicks_new + orders_new
                duplicates = clicks_staged + orders_staged - stored
                if before_commit is not None:
                    before_commit()
                # The ledger row is the last statement before COMMIT, so its committed_at
                # (the server's clock) trails the real commit by the COMMIT's WAL flush alone.
                cur.execute(sql.INSERT_LEDGER, (self.pipeline, batch_id, json.dumps(end_offsets), records_in, stored,
                                                duplicates, quarantined, late, _ts(picked_up_at or begun),
                                                _ts(begun)))
            self.conn.commit()
            committed = time.time()  # the metrics observe the commit itself, after it returned
        except BaseException:
            if not self.conn.closed:
                self.conn.rollback()
            raise
        return BatchOutcome(batch_id, False, records_in, stored, duplicates, quarantined, late, begun, committed)

    def ensure_partitions(self) -> None:
        with self.conn, self.conn.cursor() as cur:
            cur.execute(sql.ENSURE_PARTITIONS)



def _ts(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
