"""Database upkeep, its own entry point (`shopstream maintain`): refresh the rollups
concurrently, keep the daily partitions around today, and once a day move what left the
hot window to the archive (db.archive: verified Parquet first, then the drop).

The stream job's command starts it as a thread beside the job; it owns none of it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

import psycopg2

from core.database import ENSURE_PARTITIONS, REFRESH, ROLLUPS, connect
from core.exceptions import ShopstreamError
from core.settings import Settings
from db import archive

log = logging.getLogger(__name__)

RECORD_REFRESH = """
INSERT INTO rollup_refreshes (view_name, refreshed_at) VALUES (%s, clock_timestamp())
ON CONFLICT (view_name) DO UPDATE SET refreshed_at = EXCLUDED.refreshed_at
"""


def ensure_partitions(cur, today: dt.date | None = None) -> int:
    """Create the daily partitions around ``today`` (none is dropped here: see tier); returns how many were created."""
    cur.execute(ENSURE_PARTITIONS, (today,))
    return cur.fetchone()[0]


def tier(settings: Settings, today: dt.date | None = None) -> list[archive.Archived]:
    """Archive (then drop) what left the hot window; a failure is logged and removes nothing."""
    today = today or dt.datetime.now(dt.UTC).date()
    try:
        return archive.run(settings, today)
    except (psycopg2.Error, ShopstreamError, OSError) as exc:
        log.warning("archiving failed, nothing was dropped (retried at the next upkeep): %s", str(exc).strip())
        return []


def run_once(settings: Settings, today: dt.date | None = None, tiering: bool = True) -> None:
    """One round of upkeep: refresh every rollup, the partitions around ``today``, then (``tiering``) the archive."""
    conn = connect(settings, "writer")
    conn.autocommit = True  # CONCURRENTLY cannot run inside a transaction block
    try:
        with conn.cursor() as cur:
            for view in ROLLUPS:
                cur.execute(REFRESH[view])
                cur.execute(RECORD_REFRESH, (view,))
            ensure_partitions(cur, today)
    finally:
        conn.close()
    if tiering:
        tier(settings, today)


def keep_up(settings: Settings, interval_s: float, stop: threading.Event, tiered_on: dt.date | None = None) -> None:
    """A round every ``interval_s`` until ``stop``; a failed round (the database away) is logged, then retried.
    The archive is looked at once a UTC day (its scan of the kept tables is not free), first in the first round
    unless ``tiered_on`` is today."""
    while not stop.wait(interval_s):
        today = dt.datetime.now(dt.UTC).date()
        try:
            run_once(settings, tiering=today != tiered_on)
            tiered_on = today
        except (psycopg2.Error, ShopstreamError) as exc:
            log.warning("database upkeep failed (retrying in %.0f s): %s", interval_s, str(exc).strip())


class Maintenance(threading.Thread):
    """keep_up in a daemon thread, beside the stream job."""

    def __init__(self, settings: Settings, interval_s: float):
        super().__init__(name="db-maintenance", daemon=True)
        self.settings, self.interval_s = settings, interval_s
        self.stopped = threading.Event()

    def run(self) -> None:
        keep_up(self.settings, self.interval_s, self.stopped)

    def stop(self) -> None:
        self.stopped.set()


def run(settings: Settings, interval_s: float | None = None, stop: threading.Event | None = None) -> None:
    """The stage's entry point: one round now, then (with ``interval_s``) one every interval until ``stop``."""
    run_once(settings)
    if interval_s is not None:
        keep_up(settings, interval_s, stop or threading.Event(), tiered_on=dt.datetime.now(dt.UTC).date())
