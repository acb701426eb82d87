"""Which sink errors are weather (retried in the batch) and which are permanent (raised)."""

import psycopg2
import pytest

from streaming.exceptions import DeadLetterUnavailable
from streaming.sink import is_transient


@pytest.mark.parametrize(
    "exc",
    [
        psycopg2.OperationalError("server closed the connection unexpectedly"),
        psycopg2.OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused'),
        psycopg2.InterfaceError("connection already closed"),
        DeadLetterUnavailable("dead-letter topic shop.dead-letter: 3 undelivered"),
    ],
)
def test_a_lost_connection_or_an_unavailable_dead_letter_topic_is_retried(exc):
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        psycopg2.OperationalError('FATAL:  password authentication failed for user "shopstream_writer"'),
        psycopg2.OperationalError('FATAL:  database "shopstream" does not exist'),
        psycopg2.OperationalError(
            'connection to server at "127.0.0.1", port 5432 failed: SSL error: certificate verify failed'
        ),
        psycopg2.OperationalError(
            'connection to server at "127.0.0.1", port 5432 failed: server does not support SSL, but SSL was required'
        ),
        psycopg2.OperationalError('root certificate file "/nowhere/ca.pem" does not exist'),
        psycopg2.errors.UndefinedTable('relation "clickstream_events" does not exist'),
        psycopg2.errors.UniqueViolation("duplicate key value violates unique constraint"),
        ValueError("a bug"),
    ],
)
def test_bad_credentials_bad_tls_settings_a_missing_table_or_a_bug_is_not(exc):
    assert not is_transient(exc)


def test_a_server_that_is_away_is_weather_and_says_so():
    """connect() tells an unreachable server (retry later) from settings that can never connect."""
    from core.database import connect
    from core.exceptions import DependencyUnavailable
    from core.settings import Settings
    from infra.chaos.faults import free_port

    port = free_port()
    with pytest.raises(DependencyUnavailable, match=f"PostgreSQL at 127.0.0.1:{port} is not reachable"):
        connect(Settings(postgres_port=port), "reader")
