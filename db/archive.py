"""Data tiering (`shopstream archive`): days that left the hot window move from PostgreSQL to Parquet files.

The unit is one table's day. For the fact tables it is the day partition; for the tables that are not
partitioned (the quarantine, the ledger, the per-minute KPIs) it is the rows whose time column falls on that day.
Each unit goes in ONE transaction:

1. its rows are held still (a SHARE lock on a day partition: reads go on, a late write waits; for the other
   tables the REPEATABLE READ snapshot: the DELETE sees only the rows that were exported);
2. they are written to ``<archive>/<table>/day=<YYYY-MM-DD>/<table>-<YYYYMMDD>.parquet`` (pyarrow, zstd) under a
   temporary name;
3. the file is verified: read back, loaded into a temporary table shaped like the source, and its row count and
   checksum (the sum of every row's md5, order-free) compared with the source's;
4. only then is it renamed into place, recorded in ``archived_days``, and the partition dropped (or the rows
   deleted). A failure anywhere rolls back: nothing is removed without a verified archive.

The files are plain Parquet with hive-style ``day=`` folders, so DuckDB (or pyarrow, Spark, pandas) reads them
without PostgreSQL. ``restore`` loads a day's files back into a new partition, checks the checksum against the
one recorded, and attaches it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg2 import sql

from core.database import connect
from core.exceptions import ConfigError, ShopstreamError
from core.settings import Settings

log = logging.getLogger(__name__)

FACT_TABLES = ("clickstream_events", "orders", "order_lines")
#: Tables that are not partitioned, and the column whose day decides when a row leaves (after trim_days).
KEPT_TABLES = {
    "quarantine": "kafka_time",
    "sink_ledger": "committed_at",
    "kpi_revenue_minute": "window_start",
    "kpi_funnel_minute": "window_start",
    "kpi_active_sessions_minute": "window_start",
    "session_minutes": "window_start",
}
#: The ledger keeps each pipeline's newest batch whatever its age: a new checkpoint resumes from it.
LEDGER_KEEP = " AND (pipeline, batch_id) NOT IN (SELECT pipeline, max(batch_id) FROM sink_ledger GROUP BY pipeline)"
CHUNK_ROWS = 50_000

# Order-free: the count, and the sum of each row's md5 (its first 60 bits). Same text form on both sides: one
# session, one column order (the temporary table is LIKE the source).
CHECKSUM = "SELECT count(*), coalesce(sum(('x' || left(md5(t::text), 15))::bit(60)::bigint), 0) FROM {} t"
COLUMNS = """SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
             WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum"""
FACT_PARTITIONS = r"""
SELECT c.relname, to_date(right(c.relname, 8), 'YYYYMMDD') FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = %s::regclass AND c.relname ~ ('^' || %s || '_\d{8}$')
  AND to_date(right(c.relname, 8), 'YYYYMMDD') < %s
  AND NOT EXISTS (SELECT 1 FROM archived_days a WHERE a.table_name = %s AND a.day = to_date(right(c.relname, 8), 'YYYYMMDD')
                  AND a.restored_at IS NOT NULL)
ORDER BY 2"""
RECORD = """
INSERT INTO archived_days (table_name, day, row_count, checksum, path, bytes, removed_at)
VALUES (%s, %s, %s, %s, %s, %s, now())
ON CONFLICT (table_name, day, path) DO UPDATE SET row_count = EXCLUDED.row_count, checksum = EXCLUDED.checksum,
    path = EXCLUDED.path, bytes = EXCLUDED.bytes, archived_at = now(), removed_at = now(), restored_at = NULL"""


class ArchiveError(ShopstreamError):
    """An export did not verify, or a restore cannot be done: nothing was removed or changed."""


@dataclass(frozen=True)
class Archived:
    table: str
    day: dt.date
    rows: int
    path: Path
    bytes: int


@dataclass(frozen=True)
class Unit:
    """One table's day: where its rows are and how they leave."""

    table: str
    day: dt.date
    partition: str | None = None  # a fact table's day partition

    def where(self) -> sql.Composable:
        """The unit's rows in a table that is not partitioned."""
        column = sql.Identifier(KEPT_TABLES[self.table])
        where = sql.SQL("{c} >= {lo} AND {c} < {hi}").format(
            c=column, lo=sql.Literal(_midnight(self.day)), hi=sql.Literal(_midnight(self.day + dt.timedelta(days=1)))
        )
        return where + sql.SQL(LEDGER_KEEP) if self.table == "sink_ledger" else where

    def source(self) -> sql.Composable:
        if self.partition:
            return sql.Identifier(self.partition)
        return sql.SQL("(SELECT * FROM {} WHERE {})").format(sql.Identifier(self.table), self.where())

    def remove(self) -> sql.Composable:
        if self.partition:
            return sql.SQL("DROP TABLE {}").format(sql.Identifier(self.partition))
        # In this REPEATABLE READ snapshot: exactly the rows that were exported (a row written since is not
        # seen, a row changed since fails the transaction).
        return sql.SQL("DELETE FROM {} WHERE {}").format(sql.Identifier(self.table), self.where())

    def relative_path(self, folder: Path) -> Path:
        """The day partition's file; for another table's day, a new file beside any archived before (a late
        row of an archived day), never one that exists."""
        day = Path(self.table) / f"day={self.day.isoformat()}"
        name, n = f"{self.table}-{self.day:%Y%m%d}", 1
        while not self.partition and (folder / day / f"{name}.parquet").exists():
            n += 1
            name = f"{self.table}-{self.day:%Y%m%d}-{n}"
        return day / f"{name}.parquet"


def archive_folder(settings: Settings) -> Path:
    """The archive folder, created; a folder that cannot be written is a ConfigError naming the setting."""
    folder = settings.archive_path
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".writable"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"the archive folder {folder} is not writable ({exc.strerror}): set "
            f"SHOPSTREAM_ARCHIVE_DIR to a writable folder"
        ) from None
    return folder


def due(settings: Settings, today: dt.date, day: dt.date | None = None) -> list[Unit]:
    """What leaves now: fact partitions older than the hot window (not restored ones), and the other tables'
    days older than trim_days. With ``day``: that day's fact partitions, whatever their age (restored ones too)."""
    units = []
    with connect(settings, "writer") as conn, conn.cursor() as cur:
        for table in FACT_TABLES:
            if day is not None:
                name = f"{table}_{day:%Y%m%d}"
                cur.execute("SELECT to_regclass(%s) IS NOT NULL", (name,))
                if (cur.fetchone() or (False,))[0]:
                    units.append(Unit(table, day, name))
                continue
            cur.execute(FACT_PARTITIONS, (table, table, today - dt.timedelta(days=settings.hot_days), table))
            units += [Unit(table, d, name) for name, d in cur.fetchall()]
        if day is None:
            cutoff = _midnight(today - dt.timedelta(days=settings.trim_days))
            for table, column in KEPT_TABLES.items():
                cur.execute(
                    sql.SQL("SELECT DISTINCT ({c} AT TIME ZONE 'UTC')::date FROM {t} WHERE {c} < %s ORDER BY 1").format(
                        c=sql.Identifier(column), t=sql.Identifier(table)
                    ),
                    (cutoff,),
                )
                units += [Unit(table, d) for (d,) in cur.fetchall()]
    conn.close()
    return units


def run(settings: Settings, today: dt.date, day: dt.date | None = None, dry_run: bool = False) -> list[Archived]:
    """Archive, verify and remove every unit that is due (see ``due``); returns what was archived (for a dry
    run: what would be, with rows counted and no file written)."""
    folder = archive_folder(settings)
    done = []
    for unit in due(settings, today, day):
        done.append(archive_unit(settings, folder, unit, dry_run))
        if not dry_run:
            log.info("archived %s of %s: %d rows, %s", unit.table, unit.day, done[-1].rows, done[-1].path)
    return done


def archive_unit(settings: Settings, folder: Path, unit: Unit, dry_run: bool = False) -> Archived:
    relative = unit.relative_path(folder)
    target = folder / relative
    with _transaction(settings, "REPEATABLE READ") as conn, conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
        if unit.partition:
            cur.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.Identifier(unit.partition)))
        cur.execute(sql.SQL(CHECKSUM).format(unit.source()))
        rows, checksum = cur.fetchone()
        if dry_run:
            conn.rollback()
            return Archived(unit.table, unit.day, rows, target, 0)
        schema = arrow_schema(cur, unit.table)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        written = _export(conn, unit, schema, partial)
        if written != rows:
            raise ArchiveError(f"{unit.table} of {unit.day}: {written} rows exported, {rows} counted")
        loaded = _load_checksum(cur, unit.table, pq.read_table(partial))
        if loaded != (rows, checksum):
            raise ArchiveError(
                f"{unit.table} of {unit.day}: the Parquet file does not give back the same rows "
                f"({loaded[0]} rows, checksum {loaded[1]}; expected {rows}, {checksum})"
            )
        os.replace(partial, target)
        size = target.stat().st_size
        cur.execute(RECORD, (unit.table, unit.day, rows, str(checksum), str(relative), size))
        cur.execute(unit.remove())
    return Archived(unit.table, unit.day, rows, target, size)


def restore(settings: Settings, day: dt.date) -> list[Archived]:
    """Attach ``day``'s archived fact partitions again, each verified against its recorded checksum."""
    folder = settings.archive_path
    restored = []
    with _transaction(settings) as conn, conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
        cur.execute(
            "SELECT table_name, row_count, checksum, path, restored_at FROM archived_days "
            "WHERE day = %s AND table_name = ANY(%s) ORDER BY table_name",
            (day, list(FACT_TABLES)),
        )
        found = cur.fetchall()
        if not found:
            raise ConfigError(f"{day} is not archived: `shopstream archive list` shows the archived days")
        for table, rows, checksum, path, _restored_at in found:
            partition = f"{table}_{day:%Y%m%d}"
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (partition,))
            if cur.fetchone()[0]:
                raise ConfigError(f"{partition} is in the database already: nothing to restore")
            file = folder / path
            if not file.exists():
                raise ArchiveError(f"{file} is missing: the archive of {table} for {day} cannot be restored")
            cur.execute(
                sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(
                    sql.Identifier(partition), sql.Identifier(table)
                )
            )
            _copy_in(cur, partition, pq.read_table(file))
            cur.execute(sql.SQL(CHECKSUM).format(sql.Identifier(partition)))
            got = cur.fetchone()
            if (got[0], str(got[1])) != (rows, checksum):
                raise ArchiveError(
                    f"{file} gives back {got[0]} rows (checksum {got[1]}), not the {rows} "
                    f"(checksum {checksum}) that were archived: nothing restored"
                )
            cur.execute(
                sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM (%s) TO (%s)").format(
                    sql.Identifier(table), sql.Identifier(partition)
                ),
                (_midnight(day), _midnight(day + dt.timedelta(days=1))),
            )
            cur.execute("UPDATE archived_days SET restored_at = now() WHERE table_name = %s AND day = %s", (table, day))
            restored.append(Archived(table, day, rows, file, file.stat().st_size))
    return restored


def listed(settings: Settings) -> list[tuple]:
    """(table, day, rows, bytes, archived_at, removed_at, restored_at) of every archived day, oldest first."""
    with connect(settings, "reader") as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT table_name, day, row_count, bytes, archived_at, removed_at, restored_at "
            "FROM archived_days ORDER BY day, table_name"
        )
        rows = cur.fetchall()
    conn.close()
    return rows


# Arrow <-> PostgreSQL ------------------------------------------------------------------------------------------

_ARROW = {
    "timestamp with time zone": pa.timestamp("us", tz="UTC"),
    "uuid": pa.string(),
    "text": pa.string(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "smallint": pa.int16(),
    "jsonb": pa.string(),
    "bytea": pa.binary(),
    "date": pa.date32(),
    "boolean": pa.bool_(),
    "double precision": pa.float64(),
}


def arrow_type(pg_type: str) -> pa.DataType:
    if pg_type.startswith("numeric("):
        precision, scale = pg_type[len("numeric(") : -1].split(",")
        return pa.decimal128(int(precision), int(scale))
    if pg_type.startswith(("character", "text")):
        return pa.string()
    if pg_type not in _ARROW:
        raise ArchiveError(f"no Parquet type for PostgreSQL type {pg_type}")
    return _ARROW[pg_type]


def arrow_schema(cur, table: str) -> pa.Schema:
    cur.execute(COLUMNS, (table,))
    return pa.schema([pa.field(name, arrow_type(pg_type)) for name, pg_type in cur.fetchall()])


def _export(conn, unit: Unit, schema: pa.Schema, path: Path) -> int:
    """Stream the unit's rows into a Parquet file through a server-side cursor; returns the rows written."""
    as_text = {f.name for f in schema if f.type == pa.string()}  # uuid and jsonb as their text
    select = sql.SQL("SELECT {} FROM {} t").format(
        sql.SQL(", ").join(
            sql.SQL("t.{}::text").format(sql.Identifier(f.name))
            if f.name in as_text
            else sql.SQL("t.{}").format(sql.Identifier(f.name))
            for f in schema
        ),
        unit.source(),
    )
    written = 0
    with conn.cursor(name="archive_export") as cur, pq.ParquetWriter(path, schema, compression="zstd") as out:
        cur.itersize = CHUNK_ROWS
        cur.execute(select)
        for chunk in _chunks(cur):
            columns = list(zip(*chunk, strict=True))
            arrays = [
                pa.array(
                    [bytes(v) if v is not None else None for v in col] if f.type == pa.binary() else col, type=f.type
                )
                for col, f in zip(columns, schema, strict=True)
            ]
            out.write_table(pa.Table.from_arrays(arrays, schema=schema))
            written += len(chunk)
    return written


def _chunks(cur) -> Iterator[list[tuple]]:
    while rows := cur.fetchmany(CHUNK_ROWS):
        yield rows


def _load_checksum(cur, table: str, data: pa.Table) -> tuple[int, object]:
    cur.execute(sql.SQL("CREATE TEMP TABLE archive_check (LIKE {}) ON COMMIT DROP").format(sql.Identifier(table)))
    _copy_in(cur, "archive_check", data)
    cur.execute(sql.SQL(CHECKSUM).format(sql.Identifier("archive_check")))
    result = cur.fetchone()
    cur.execute("DROP TABLE archive_check")
    return result


def _copy_in(cur, table: str, data: pa.Table) -> None:
    """COPY Arrow rows into ``table`` as CSV (bytea as PostgreSQL's hex text)."""
    columns = []
    for column in data.columns:
        if column.type == pa.binary():
            column = pa.array([None if v is None else "\\x" + v.hex() for v in column.to_pylist()], pa.string())
        columns.append(column)
    buffer = io.BytesIO()
    pacsv.write_csv(
        pa.table(columns, names=data.column_names),
        buffer,
        pacsv.WriteOptions(include_header=False, quoting_style="needed"),
    )
    buffer.seek(0)
    cur.copy_expert(
        sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)")
        .format(sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, data.column_names)))
        .as_string(cur),
        buffer,
    )


@contextlib.contextmanager
def _transaction(settings: Settings, isolation: str | None = None) -> Iterator:
    """A writer connection in one transaction: committed when the block ends, rolled back if it raises, closed."""
    conn = connect(settings, "writer")
    if isolation:
        conn.set_session(isolation_level=isolation)
    try:
        with conn:  # psycopg2: COMMIT on success, ROLLBACK on an exception
            yield conn
    finally:
        conn.close()


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)
