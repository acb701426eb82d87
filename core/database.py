"""PostgreSQL connections, and the database objects more than one stage names."""

from __future__ import annotations

import psycopg2
from psycopg2.extensions import connection

from core.exceptions import DependencyUnavailable, ServiceUnhealthy, not_reachable
from core.settings import Settings

#: Materialized rollups, refreshed by db.maintenance and timed by the report.
ROLLUPS = ("revenue_hourly", "funnel_daily")
REFRESH = {view: f"REFRESH MATERIALIZED VIEW CONCURRENTLY {view}" for view in ROLLUPS}


#: The daily partitions around a day: the caller's (the upkeep's tests) or, given NULL, the server's own UTC date.
#: The sink runs it on each connection, the upkeep on its rounds (migration 006).
ENSURE_PARTITIONS = "SELECT ensure_daily_partitions_on(coalesce(%s::date, (now() AT TIME ZONE 'UTC')::date))"


#: What libpq says when a connection can never succeed as configured.
PERMANENT_CONNECT_ERRORS = (
    "password authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
    "is not permitted to log in",
    "certificate verify failed",  # sslmode verify-*: the server's certificate is not the CA's (or not its name)
    "server does not support SSL",  # sslmode require or stronger, against a server without TLS
)


def open_connection(
    settings: Settings, role: str = "writer", dbname: str | None = None, application_name: str | None = None
) -> connection:
    """A psycopg2 connection as ``role``, psycopg2's own errors untouched: for a caller that classifies them
    itself (the sink decides what it retries). Everyone else calls ``connect``. ``application_name`` names the
    session in pg_stat_activity (a stream driver's sessions carry its lease's epoch, so a takeover can end them)."""
    dsn = settings.postgres(role, dbname).dsn()
    return psycopg2.connect(dsn, application_name=application_name) if application_name else psycopg2.connect(dsn)


def unreachable(settings: Settings, role: str, exc: psycopg2.OperationalError) -> ServiceUnhealthy:
    """The one error for a connection that failed: DependencyUnavailable when the server is away (retrying may
    succeed), ServiceUnhealthy when the settings can never connect; one line, naming the fix."""
    address = settings.postgres(role).address
    cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if any(text in str(exc) for text in PERMANENT_CONNECT_ERRORS):
        return ServiceUnhealthy(
            f"PostgreSQL at {address} refused {role} ({cause}): check the SHOPSTREAM_POSTGRES_* settings"
        )
    return DependencyUnavailable(
        not_reachable("PostgreSQL", address, cause, "run `shopstream up` or fix SHOPSTREAM_POSTGRES_HOST")
    )


def connect(
    settings: Settings, role: str = "writer", dbname: str | None = None, application_name: str | None = None
) -> connection:
    """A psycopg2 connection as ``role``; failing, ``unreachable``'s one-line error."""
    try:
        return open_connection(settings, role, dbname, application_name)
    except psycopg2.OperationalError as exc:
        raise unreachable(settings, role, exc) from None
