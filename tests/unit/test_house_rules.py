"""House rules that a linter does not know: where a kind of call may stand."""

from __future__ import annotations

import re

from core.settings import PROJECT_ROOT

SOURCES = [
    p
    for folder in ("core", "schemas", "producers", "streaming", "db", "monitoring", "infra", "tests")
    for p in (PROJECT_ROOT / folder).rglob("*.py")
]


def test_every_postgresql_connection_goes_through_core_database():
    """One place builds connections from the one connection model, and explains their failures in one line."""
    calls = re.compile(r"psycopg2\.connect\(")
    offenders = [
        str(p.relative_to(PROJECT_ROOT))
        for p in SOURCES
        if p != PROJECT_ROOT / "core" / "database.py" and calls.search(p.read_text())
    ]
    assert not offenders, f"call core.database.connect (or open_connection) instead: {offenders}"
