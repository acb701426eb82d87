"""The pipeline's lease: which driver may run the query, fenced by an epoch the database enforces (issue 29).

One row per pipeline in ``stream_lease`` (migration 011). A driver takes the lease when it is free (no row, released,
not renewed for ``ttl_s``, or its holder's process is gone), raising the epoch. The epoch is a fencing token:

- every batch transaction reads the row (FOR KEY SHARE) before its dead letters and its ledger row and aborts (``Fenced``) when the epoch
  is no longer its own (streaming.sink), so a driver that hung and woke up again commits nothing;
- a takeover first ends the old holder's database sessions (they carry its epoch in ``application_name``): a
  transaction it left open, holding that row lock, cannot block the new epoch;
- a takeover from a holder that may still be alive (it hung, or it is on another host) does not share its checkpoint:
  two queries on one checkpoint are not fenced by Spark (its file manager checks, then renames). The new holder copies
  the checkpoint to a folder of its own *after* the epoch is raised. From then on the old holder commits nothing, and
  every batch it committed before had its offsets file written first (Spark's write-ahead log), so the copy holds
  every batch the ledger holds: the query id, and with it the ledger's key, carries on. A holder that is gone
  (released, or its process ended on this host) is continued in place.

The holder renews the row (and says how far behind it is) from a thread of its own, ``LeaseKeeper``; a standby waits
for the row to go stale, then takes it over (streaming.job).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2.extensions import connection

from core.database import connect, open_connection
from core.exceptions import ShopstreamError
from core.settings import Settings
from streaming.exceptions import StreamingError

log = logging.getLogger(__name__)

#: This process as a lease holder.
HOLDER = f"{socket.gethostname()}:{os.getpid()}"
#: How often the holder renews the lease, and a standby looks at it (s).
RENEW_EVERY_S = 0.5
POLL_EVERY_S = 0.25

READ = """
SELECT epoch, holder, checkpoint, renewed_at = '-infinity'::timestamptz,
       coalesce(extract(epoch FROM clock_timestamp() - nullif(renewed_at, '-infinity'))::float8, 'Infinity'),
       lag_records,
       extract(epoch FROM clock_timestamp() - last_commit_at)::float8,
       extract(epoch FROM clock_timestamp() - acquired_at)::float8
FROM stream_lease WHERE pipeline = %s
"""
INSERT = """
INSERT INTO stream_lease (pipeline, epoch, holder, checkpoint) VALUES (%s, 1, %s, %s)
ON CONFLICT (pipeline) DO NOTHING
"""
#: FOR UPDATE: waits for a batch transaction that read the old epoch (FOR KEY SHARE) to end; a renewal does not.
TAKE_OVER = """
WITH held AS (SELECT pipeline FROM stream_lease WHERE pipeline = %s AND epoch = %s FOR UPDATE)
UPDATE stream_lease l SET epoch = epoch + 1, holder = %s, checkpoint = %s, acquired_at = clock_timestamp(),
       renewed_at = clock_timestamp(), lag_records = NULL
FROM held WHERE l.pipeline = held.pipeline
"""
#: The old holder's sessions, by the epoch in their application_name (same role: no superuser needed).
END_SESSIONS = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE application_name = %s AND pid <> pg_backend_pid()
"""
RENEW = """
UPDATE stream_lease SET renewed_at = clock_timestamp(), lag_records = %s,
       last_commit_at = coalesce(to_timestamp(%s), last_commit_at)
WHERE pipeline = %s AND epoch = %s
"""
RELEASE = "UPDATE stream_lease SET renewed_at = '-infinity' WHERE pipeline = %s AND epoch = %s"
#: Read by every batch transaction before it publishes dead letters and writes its ledger row (streaming.sink). A
#: takeover (FOR UPDATE) waits for the transaction to end; the holder's own renewals (no key change) do not.
FENCE = "SELECT epoch FROM stream_lease WHERE pipeline = %s FOR KEY SHARE"


class Fenced(StreamingError):
    """Another driver took this pipeline's lease over (a higher epoch): this driver commits nothing more."""


def session_name(pipeline: str, epoch: int) -> str:
    """The application_name of a lease holder's database sessions (at most 63 bytes)."""
    return f"shopstream-stream {pipeline} e{epoch}"[:63]


@dataclass(frozen=True)
class LeaseRow:
    epoch: int
    holder: str
    checkpoint: Path
    released: bool
    age_s: float  # since the last renewal
    lag_records: int | None
    last_commit_age_s: float | None
    held_for_s: float = 0.0  # since the holder took it

    def gone(self) -> bool:
        """Whether the holder is known to have ended: it released the lease, or its process on this host is gone."""
        if self.released:
            return True
        host, _, pid = self.holder.rpartition(":")
        if host != socket.gethostname() or not pid.isdigit():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return _zombie(int(pid))

    def free(self, ttl_s: float) -> bool:
        return self.gone() or self.age_s > ttl_s


def _zombie(pid: int) -> bool:
    """A process that ended and was not reaped yet (its parent, the supervisor, is about to)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def read(settings: Settings, pipeline: str, role: str = "writer") -> LeaseRow | None:
    with contextlib.closing(connect(settings, role)) as conn, conn, conn.cursor() as cur:
        cur.execute(READ, (pipeline,))
        row = cur.fetchone()
    return _row(row) if row else None


def _row(row: tuple) -> LeaseRow:
    epoch, holder, checkpoint, released, age, lag, commit_age, held_for = row
    return LeaseRow(epoch, holder, Path(checkpoint), released, age, lag, commit_age, held_for)


class Lease:
    """This driver's side of the pipeline's lease. ``epoch`` and ``checkpoint`` are set once it is held."""

    def __init__(self, settings: Settings, pipeline: str, base_checkpoint: Path, ttl_s: float):
        self.settings, self.pipeline, self.base, self.ttl_s = settings, pipeline, base_checkpoint, ttl_s
        self.epoch: int | None = None
        self.checkpoint: Path = base_checkpoint
        self.taken_over = False  # from a holder that had not released it
        self.held: LeaseRow | None = None  # the row at the last look (see try_acquire)
        self._conn: connection | None = None

    def read(self) -> LeaseRow | None:
        return read(self.settings, self.pipeline)

    def session_name(self) -> str | None:
        return session_name(self.pipeline, self.epoch) if self.epoch is not None else None

    def try_acquire(self) -> bool:
        """Take the lease if it is free. ``held`` is then the row as it was before (``None``: there was none);
        when it is not free, the row that holds it (who, since when: for the caller's message)."""
        conn = self._connection()
        try:
            with conn.cursor() as cur:
                cur.execute(INSERT, (self.pipeline, HOLDER, str(self.base)))
                if cur.rowcount == 1:
                    self.close()
                    self.epoch, self.checkpoint, self.held = 1, self.base, None
                    return True
                cur.execute(READ, (self.pipeline,))
                row = cur.fetchone()
                if row is None:  # deleted meanwhile: the next look inserts
                    return False
                held = self.held = _row(row)
                if not held.free(self.ttl_s) and held.holder != HOLDER:
                    return False
                # The lease's folder, unless this job was pointed at another one (--checkpoint-dir): then that.
                source = held.checkpoint if held.checkpoint.name.startswith(self.base.name) else self.base
                in_place = held.gone() or held.holder == HOLDER
                target = source if in_place else _next_checkpoint(self.base, held.epoch + 1)
                if not held.released:
                    cur.execute(END_SESSIONS, (session_name(self.pipeline, held.epoch),))
                try:
                    cur.execute("SET lock_timeout = '2s'")
                    cur.execute(TAKE_OVER, (self.pipeline, held.epoch, HOLDER, str(target)))
                except psycopg2.errors.LockNotAvailable:
                    return False  # the old holder reconnected and is committing: the next look sees its outcome
                if cur.rowcount != 1:
                    return False  # another driver raised the epoch first
        except psycopg2.Error:
            self.close()
            raise
        self.close()  # the looks are over
        self.epoch, self.checkpoint = held.epoch + 1, target
        self.taken_over = not held.released
        log.info(
            "lease of %s taken (epoch %d) from %s%s; checkpoint %s",
            self.pipeline,
            self.epoch,
            held.holder,
            " (released)" if held.released else f" (renewed {held.age_s:.1f} s ago)",
            target,
        )
        if not in_place:
            _copy_checkpoint(source, target)
        return True

    def _connection(self) -> connection:
        """One connection for a standby's looks (four a second), opened again after an error."""
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.settings, "writer")
            self._conn.autocommit = True
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg2.Error):
                self._conn.close()
        self._conn = None

    def renew(self, conn: connection, lag_records: int | None, last_commit_at: float | None) -> bool:
        """Renew through ``conn``; False when the lease is no longer this driver's."""
        with conn, conn.cursor() as cur:
            cur.execute(RENEW, (lag_records, last_commit_at, self.pipeline, self.epoch))
            return cur.rowcount == 1

    def release(self) -> None:
        """Hand the lease back (a standby takes it at once); quietly, when the database is away."""
        if self.epoch is None:
            return
        with contextlib.suppress(psycopg2.Error, StreamingError, OSError):
            conn = open_connection(self.settings, "writer")
            with contextlib.closing(conn), conn, conn.cursor() as cur:
                cur.execute(RELEASE, (self.pipeline, self.epoch))


def _next_checkpoint(base: Path, epoch: int) -> Path:
    return base.with_name(f"{base.name}.epoch-{epoch}")


def _copy_checkpoint(source: Path, target: Path) -> None:
    """Copy the old holder's checkpoint (after the epoch was raised: see the module's docstring), whole or not at
    all: a folder that is missing makes the query start from the ledger's offsets, on a new checkpoint."""
    if not (source / "metadata").exists():
        log.warning("checkpoint %s has no metadata: the query starts from the ledger's offsets", source)
        return
    partial = target.with_name(f"{target.name}.copying")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial, ignore=shutil.ignore_patterns("*.tmp", ".*.tmp"))
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    log.info("checkpoint %s copied to %s (the old holder may still be alive: it keeps its own)", source, target)


class LeaseKeeper(threading.Thread):
    """Renews the lease every RENEW_EVERY_S while ``healthy()`` says the driver makes progress; calls ``lost()``
    once, when the row says another driver holds it. A database that is away is waited out (the batches wait too)."""

    def __init__(
        self,
        lease: Lease,
        healthy: Callable[[], bool],
        lag: Callable[[], int | None],
        last_commit: Callable[[], float | None],
        lost: Callable[[], None],
    ):
        super().__init__(name="lease-keeper", daemon=True)
        self.lease, self.healthy, self.lag, self.last_commit, self.lost = lease, healthy, lag, last_commit, lost
        self.done = threading.Event()

    def run(self) -> None:
        conn: connection | None = None
        warned = False
        while not self.done.wait(RENEW_EVERY_S):
            if not self.healthy():
                continue  # a hung driver stops renewing: a standby takes over once the lease is stale
            try:
                if conn is None or conn.closed:
                    conn = open_connection(self.lease.settings, "writer", application_name=self.lease.session_name())
                    conn.autocommit = False
                if not self.lease.renew(conn, self.lag(), self.last_commit()):
                    log.warning("the lease of %s was taken over by another driver", self.lease.pipeline)
                    self.lost()
                    return
                warned = False
            except psycopg2.Error as exc:
                if not warned:
                    log.warning("lease: cannot renew (%s); retrying", _first_line(exc))
                    warned = True
                if conn is not None:
                    with contextlib.suppress(psycopg2.Error):
                        conn.close()
                conn = None
        if conn is not None:
            with contextlib.suppress(psycopg2.Error):
                conn.close()

    def stop(self) -> None:
        self.done.set()
        self.join(5)


def wait_for_lease(lease: Lease, stop: threading.Event, look: Callable[[LeaseRow], None]) -> bool:
    """A standby's wait: look every POLL_EVERY_S until the lease is taken (True) or ``stop`` is set (False).
    ``look`` gets the holder's row each time (the caller warms up once the holder's lag is back to normal)."""
    warned = False
    while not stop.is_set():
        try:
            if lease.try_acquire():
                if stop.is_set():  # asked to stop while it took over: hand it back rather than start
                    lease.release()
                    return False
                return True
        except (psycopg2.Error, ShopstreamError) as exc:
            if not warned:
                log.warning("standby: cannot look at the lease (%s); retrying", _first_line(exc))
                warned = True
            stop.wait(1.0)
            continue
        warned = False
        if lease.held is not None:
            look(lease.held)
        stop.wait(POLL_EVERY_S)
    return False


def drivers_dir(settings: Settings) -> Path:
    return settings.runtime_dir / "run" / "drivers"


def record_driver(settings: Settings, pipeline: str, role: str, metrics_port: int | None) -> None:
    """This process as a stream driver, for `shopstream status`: ``run/drivers/<pid>.json``, rewritten on a
    takeover, removed when it ends (a record whose process is gone is ignored)."""
    folder = drivers_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    record = {"pipeline": pipeline, "role": role, "pid": os.getpid(), "metrics_port": metrics_port or None}
    partial = folder / f".{os.getpid()}.json"
    partial.write_text(json.dumps(record))
    partial.replace(folder / f"{os.getpid()}.json")


def forget_driver(settings: Settings) -> None:
    (drivers_dir(settings) / f"{os.getpid()}.json").unlink(missing_ok=True)


def running_drivers(settings: Settings) -> list[dict]:
    """The stream drivers of this runtime whose process is alive, by pipeline then role (active first)."""
    found = []
    for path in sorted(drivers_dir(settings).glob("[0-9]*.json")):
        try:
            record = json.loads(path.read_text())
            os.kill(int(record["pid"]), 0)
        except (OSError, ValueError, KeyError):
            continue
        if not _zombie(int(record["pid"])):
            found.append(record)
    return sorted(found, key=lambda r: (r["pipeline"], r["role"] != "active", r["pid"]))


def _first_line(exc: BaseException) -> str:
    return next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)[:300]
