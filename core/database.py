"""PostgreSQL connections, and the database objects more than one stage names."""

from __future__ import annotations

import psycopg2

from core.exceptions import ServiceUnhealthy
from core.settings import Settings

#: Materialized rollups, refreshed by db.maintenance and timed by the report.
ROLLUPS = ("revenue_hourly", "funnel_daily")
REFRESH = {view: f"REFRESH MATERIALIZED VIEW CONCURRENTLY {view}" for view in ROLLUPS}


def connect(settings: Settings, role: str = "writer", dbname: str | None = None):
    """A psycopg2 connection as ``role``; an unreachable server is a one-line error naming the fix."""
    try:
        return psycopg2.connect(settings.postgres_dsn(role, dbname))
    except psycopg2.OperationalError as exc:
        host = settings.postgres_host or settings.host
        raise ServiceUnhealthy(f"PostgreSQL at {host}:{settings.postgres_port} is not reachable: "
                               f"run `shopstream up` ({str(exc).strip().splitlines()[0]})") from None
