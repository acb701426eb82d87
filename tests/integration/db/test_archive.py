"""Data tiering against the real PostgreSQL: old days go to verified Parquet files before anything is dropped, come
back identical, and can be queried without PostgreSQL (DuckDB)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from core.database import connect
from db import archive
from db.maintenance import ensure_partitions, run_once
from infra.cli import main
from streaming.sink import PostgresSink
from tests.fixtures.database import scalar
from tests.fixtures.sink_rows import IDS, NOW, click, csv

TODAY = NOW.date()
OLD = TODAY - dt.timedelta(days=10)  # past the 7-day hot window
STALE = TODAY - dt.timedelta(days=40)  # past the 30 days the quarantine and KPIs are kept
FACTS = "SELECT t::text FROM {} t ORDER BY event_time, event_id"


def at(day: dt.date, hour: int) -> str:
    return f"{day} {hour:02d}:00:00.123456Z"


@pytest.fixture
def old_day(database, tmp_path):
    """A database with facts on OLD (one with a newer schema's extra field), quarantine and KPI rows of STALE."""
    settings = database.model_copy(update={"archive_dir": tmp_path / "archive"})
    with connect(settings, "writer") as conn, conn.cursor() as cur:
        ensure_partitions(cur, OLD)
    sink = PostgresSink(settings, "tiering:q1")
    extra = click(IDS[2], event_time=at(OLD, 11)).removesuffix(",") + ',"{""loyalty_tier"": ""gold""}"'
    quarantine = f"t.clickstream,0,9,{at(STALE, 3)},schema,not_confluent_framing,bad,,\\x0102"
    sink.write(
        1,
        {
            "click": csv(
                [
                    click(IDS[0], event_time=at(OLD, 9)),
                    click(IDS[1], event_time=at(OLD, 10)),
                    extra,
                    click(IDS[3], offset=3),
                ]
            ),
            "quarantine": csv([quarantine]),
        },
        {"t.clickstream": {"0": 10}},
    )
    sink.close()
    with connect(settings, "writer") as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO kpi_funnel_minute (window_start, page_views) VALUES (%s, 7)", (at(STALE, 4),))
    return settings


def rows(settings, relation: str) -> list[str]:
    with connect(settings, "reader") as conn, conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
        cur.execute(FACTS.format(relation))
        return [r for (r,) in cur.fetchall()]


def partition_exists(settings, name: str) -> bool:
    return scalar(settings, f"SELECT to_regclass('{name}') IS NOT NULL")


def test_an_old_day_is_archived_verified_dropped_and_restored_identically(old_day):
    settings = old_day
    part = f"clickstream_events_{OLD:%Y%m%d}"
    before = rows(settings, part)
    assert len(before) == 3

    done = archive.run(settings, TODAY)
    by_key = {(a.table, a.day): a for a in done}
    assert by_key[("clickstream_events", OLD)].rows == 3
    assert by_key[("quarantine", STALE)].rows == 1 and by_key[("kpi_funnel_minute", STALE)].rows == 1
    assert not partition_exists(settings, part), "the archived day partition is dropped"
    assert partition_exists(settings, f"clickstream_events_{TODAY:%Y%m%d}"), "the hot window stays"
    assert scalar(settings, "SELECT count(*) FROM clickstream_events") == 1
    assert scalar(settings, "SELECT count(*) FROM quarantine") == 0
    assert (
        scalar(settings, "SELECT count(*) FROM kpi_funnel_minute WHERE window_start < now() - interval '30 days'") == 0
    )
    assert scalar(settings, "SELECT count(*) FROM sink_ledger") == 1, "each pipeline's newest ledger row stays"

    # Without PostgreSQL: DuckDB over the Parquet files, hive-style day folders.
    files = str(settings.archive_path / "clickstream_events" / "*" / "*.parquet")
    lake = duckdb.connect()
    count, tier = lake.execute(
        f"SELECT count(*), max(json_extract_string(extra_fields, '$.loyalty_tier')) "
        f"FROM read_parquet('{files}', hive_partitioning = true) WHERE day = '{OLD}'"
    ).fetchone()
    assert (count, tier) == (3, "gold")
    raw = lake.execute(f"SELECT raw FROM read_parquet('{settings.archive_path}/quarantine/*/*.parquet')").fetchone()[0]
    assert raw == b"\x01\x02"

    restored = archive.restore(settings, OLD)
    assert {a.table for a in restored} == {"clickstream_events", "orders", "order_lines"}
    assert rows(settings, part) == before, "the restored partition holds the very rows that were archived"
    assert archive.run(settings, TODAY) == [], "the upkeep leaves a restored day alone"
    assert partition_exists(settings, part)
    again = archive.run(settings, TODAY, day=OLD)
    assert {(a.table, a.rows) for a in again} >= {("clickstream_events", 3)}
    assert not partition_exists(settings, part)


def test_nothing_is_dropped_when_the_archive_folder_cannot_be_written(old_day, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    settings = old_day.model_copy(update={"archive_dir": blocker / "archive"})
    part = f"clickstream_events_{OLD:%Y%m%d}"

    run_once(settings, TODAY)  # the upkeep logs the failure and drops nothing
    assert partition_exists(settings, part)
    assert scalar(settings, "SELECT count(*) FROM quarantine") == 1

    monkeypatch.setenv("SHOPSTREAM_POSTGRES_DB", settings.postgres_db)
    monkeypatch.setenv("SHOPSTREAM_ARCHIVE_DIR", str(blocker / "archive"))
    with pytest.raises(SystemExit) as exit_:
        main(["archive", "--today", str(TODAY)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is not writable" in err and "SHOPSTREAM_ARCHIVE_DIR" in err, err
    assert partition_exists(settings, part)


def test_restoring_a_day_that_is_not_archived_is_one_line_and_changes_nothing(old_day, monkeypatch, capsys):
    monkeypatch.setenv("SHOPSTREAM_POSTGRES_DB", old_day.postgres_db)
    monkeypatch.setenv("SHOPSTREAM_ARCHIVE_DIR", str(old_day.archive_path))
    with pytest.raises(SystemExit) as exit_:
        main(["archive", "restore", "--day", str(OLD)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{OLD} is not archived" in err, err
    assert scalar(old_day, "SELECT count(*) FROM clickstream_events") == 4


def test_an_export_that_does_not_give_back_the_same_rows_drops_nothing(old_day, monkeypatch):
    """One value changed between the database and the file (a corrupt write, say): the checksum differs, the count
    does not; the transaction rolls back, the partition stays and no archive is recorded."""
    import pyarrow as pa

    read_back = archive.pq.read_table

    def corrupted(path):
        table = read_back(path)
        if table.num_rows and "customer_id" in table.column_names:
            i = table.column_names.index("customer_id")
            table = table.set_column(i, "customer_id", pa.array(["C2", *table.column(i).to_pylist()[1:]]))
        return table

    monkeypatch.setattr(archive.pq, "read_table", corrupted)
    with pytest.raises(archive.ArchiveError, match="does not give back the same rows"):
        archive.run(old_day, TODAY)
    assert partition_exists(old_day, f"clickstream_events_{OLD:%Y%m%d}")
    assert scalar(old_day, "SELECT count(*) FROM clickstream_events") == 4
    assert (
        scalar(old_day, "SELECT count(*) FROM archived_days WHERE table_name = 'clickstream_events' AND row_count > 0")
        == 0
    )
