"""Apply db/migrations/NNN_name.sql in order, each once, each in its own transaction.

Applied files are recorded with a checksum; an applied file that changed afterwards is
an error, because the database would no longer match the code.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from core.database import connect
from core.exceptions import ConfigError
from core.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

CREATE_TRACKING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""
SELECT_APPLIED = "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
INSERT_APPLIED = "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)"
LOCK = "SELECT pg_advisory_xact_lock(7312001)"  # one migrator at a time


@dataclass(frozen=True)
class Migration:
    version: int
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(folder: Path = MIGRATIONS) -> list[Migration]:
    migrations = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ConfigError(f"migration {path.name} is not named NNN_lower_snake.sql")
        migrations.append(Migration(int(match.group(1)), path))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ConfigError(f"two migrations in {folder} share a number")
    return migrations


def migrate(settings: Settings, folder: Path = MIGRATIONS) -> list[str]:
    """Apply pending migrations. Returns the names applied."""
    migrations = discover(folder)
    applied_now = []
    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(LOCK)
            cur.execute(CREATE_TRACKING)
            cur.execute(SELECT_APPLIED)
            applied = {v: (name, checksum) for v, name, checksum in cur.fetchall()}
        for migration in migrations:
            if migration.version in applied:
                name, checksum = applied[migration.version]
                if checksum != migration.checksum:
                    raise ConfigError(
                        f"migration {migration.path.name} changed after it was applied as {name}: "
                        f"add a new migration instead of editing an applied one"
                    )
                continue
            with conn, conn.cursor() as cur:
                cur.execute(LOCK)
                cur.execute(migration.sql)
                cur.execute(INSERT_APPLIED, (migration.version, migration.path.name, migration.checksum))
            log.info("applied %s", migration.path.name)
            applied_now.append(migration.path.name)
    finally:
        conn.close()
    return applied_now
