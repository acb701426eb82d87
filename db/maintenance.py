"""Periodic database upkeep: refresh the rollups concurrently, keep daily partitions ahead."""

from __future__ import annotations

import datetime as dt
import logging
import threading

import psycopg2

from infra.settings import Settings

log = logging.getLogger(__name__)

ROLLUPS = ("revenue_hourly", "funnel_daily")
REFRESH = {view: f"REFRESH MATERIALIZED VIEW CONCURRENTLY {view}" for view in ROLLUPS}
RECORD_REFRESH = """
INSERT INTO rollup_refreshes (view_name, refreshed_at) VALUES (%s, clock_timestamp())
ON CONFLICT (view_name) DO UPDATE SET refreshed_at = EXCLUDED.refreshed_at
"""
# The day the upkeep works from: the caller's, or else the server's own UTC date.
ENSURE_PARTITIONS = "SELECT ensure_daily_partitions_on(coalesce(%s::date, (now() AT TIME ZONE 'UTC')::date))"


def ensure_partitions(cur, today: dt.date | None = None) -> int:
    """Create the daily partitions around ``today`` and drop those past retention; returns how many were created."""
    cur.execute(ENSURE_PARTITIONS, (today,))
    return cur.fetchone()[0]


def refresh_rollups(settings: Settings) -> None:
    conn = psycopg2.connect(settings.postgres_dsn("writer"))
    conn.autocommit = True  # CONCURRENTLY cannot run inside a transaction block
    try:
        with conn.cursor() as cur:
            for view in ROLLUPS:
                cur.execute(REFRESH[view])
                cur.execute(RECORD_REFRESH, (view,))
            ensure_partitions(cur)
    finally:
        conn.close()


class Maintenance(threading.Thread):
    """Runs refresh_rollups every ``interval_s`` until stopped; failures are logged, not fatal."""

    def __init__(self, settings: Settings, interval_s: float):
        super().__init__(name="db-maintenance", daemon=True)
        self.settings, self.interval_s = settings, interval_s
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval_s):
            try:
                refresh_rollups(self.settings)
            except psycopg2.Error as exc:
                log.warning("rollup refresh failed: %s", str(exc).strip())

    def stop(self) -> None:
        self.stopped.set()
