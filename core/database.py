"""PostgreSQL connections, and the database objects more than one stage names."""

from __future__ import annotations

import psycopg2

from core.exceptions import DependencyUnavailable, ServiceUnhealthy
from core.settings import Settings

#: Materialized rollups, refreshed by db.maintenance and timed by the report.
ROLLUPS = ("revenue_hourly", "funnel_daily")
REFRESH = {view: f"REFRESH MATERIALIZED VIEW CONCURRENTLY {view}" for view in ROLLUPS}


#: What libpq says when a connection can never succeed as configured.
PERMANENT_CONNECT_ERRORS = (
    "password authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
    "is not permitted to log in",
)


def connect(settings: Settings, role: str = "writer", dbname: str | None = None):
    """A psycopg2 connection as ``role``. Failing, a one-line error naming the fix: DependencyUnavailable when
    the server is away (retrying may succeed), ServiceUnhealthy when the settings can never connect."""
    try:
        return psycopg2.connect(settings.postgres_dsn(role, dbname))
    except psycopg2.OperationalError as exc:
        host = settings.postgres_host or settings.host
        cause = str(exc).strip().splitlines()[0]
        if any(text in str(exc) for text in PERMANENT_CONNECT_ERRORS):
            raise ServiceUnhealthy(
                f"PostgreSQL at {host}:{settings.postgres_port} refused {role} ({cause}): "
                f"check the SHOPSTREAM_POSTGRES_* settings"
            ) from None
        raise DependencyUnavailable(
            f"PostgreSQL at {host}:{settings.postgres_port} is not reachable: run `shopstream up` ({cause})"
        ) from None
