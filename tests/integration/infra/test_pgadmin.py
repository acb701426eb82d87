"""pgAdmin locally (`up --with pgadmin`): a person logs in through a browser, opens the
pre-registered server as the read-only role, and finds the fact tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.migrate import migrate
from infra.runtime import stack
from infra.runtime.services.pgadmin import PgAdmin
from tests.fixtures.browser import chromium_page, own_errors

pytestmark = pytest.mark.slow


def listening_addresses(port: int) -> set[str]:
    """The local addresses a TCP socket listens on for ``port`` (Linux's /proc/net/tcp, IPv4)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def test_pgadmin_logs_in_and_finds_the_fact_tables(running_stack):
    settings = running_stack
    if settings.postgres_host not in (None, settings.host):
        pytest.skip("the pre-registered server is the local PostgreSQL")
    migrate(settings)  # the fact tables of the database pgAdmin opens (`run` applies them too)
    pgadmin = PgAdmin(settings)
    started = stack.up(settings, with_=("pgadmin",))
    try:
        assert pgadmin.status().healthy and "pgadmin" in [s.name for s in stack.status(settings)]
        assert listening_addresses(settings.pgadmin_port) == {"127.0.0.1"}
        base = settings.pgadmin_url
        with chromium_page() as (page, errors):
            page.goto(f"{base}/login")
            page.fill("input[name=email]", settings.pgadmin_email)
            page.fill("input[name=password]", settings.pgadmin_password.get_secret_value())
            page.keyboard.press("Enter")
            page.wait_for_url("**/browser/**", timeout=60_000)
            page.wait_for_function("() => window.pgAdmin && window.pgAdmin.csrf_token", timeout=60_000)
            headers = {"X-pgA-CSRFToken": page.evaluate("() => window.pgAdmin.csrf_token")}

            def nodes(path: str) -> list[dict]:
                """A browser-tree level, through the API the page itself uses (with its session)."""
                answer = page.request.get(f"{base}/browser/{path}", headers=headers)
                assert answer.ok, (path, answer.status)
                body = answer.json()
                return body.get("data") or body.get("result") or []

            gid = next(g["_id"] for g in nodes("server_group/nodes/") if g["label"] == "shopstream")
            server = next(s for s in nodes(f"server/nodes/{gid}") if s["label"] == "shopstream (read-only)")
            sid = server["_id"]
            assert server["username"] == settings.reader_user
            connect = page.request.post(f"{base}/browser/server/connect/{gid}/{sid}", headers=headers, data={})
            assert connect.ok, connect.text()  # no password asked: the pgpass answers
            did = next(d["_id"] for d in nodes(f"database/nodes/{gid}/{sid}") if d["label"] == settings.postgres_db)
            scid = next(s["_id"] for s in nodes(f"schema/nodes/{gid}/{sid}/{did}") if s["label"] == "public")
            tables = {t["label"] for t in nodes(f"table/nodes/{gid}/{sid}/{did}/{scid}")}
        assert {"clickstream_events", "orders", "order_lines", "quarantine", "sink_ledger"} <= tables, tables
        assert own_errors(errors, base) == [], errors
    finally:
        if "pgadmin" in started:
            pgadmin.stop()
    if "pgadmin" in started:  # stopped again: `status` lists only the optional services that run
        assert "pgadmin" not in [s.name for s in stack.status(settings)]
