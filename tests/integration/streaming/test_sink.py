"""The one-transaction sink and its ledger, against the real PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from core.database import connect
from db.maintenance import ensure_partitions, tier
from streaming.exceptions import StagingMismatch
from streaming.sink import PostgresSink, Read
from tests.fixtures.database import scalar
from tests.fixtures.sink_rows import IDS, NOW, T0, click, csv, order_rows


@pytest.fixture
def sink(database):
    settings = database
    sink = PostgresSink(settings, "unit:q1")
    yield settings, sink
    sink.close()


def test_a_batch_commits_facts_kpis_quarantine_and_ledger_together(sink):
    settings, s = sink
    order, lines = order_rows(IDS[3])
    quarantine = f"t.clickstream,0,9,{T0},schema,not_confluent_framing,bad,,\\x0102"
    out = s.write(
        1,
        {
            "click": csv([click(IDS[0]), click(IDS[1], event_type="add_to_cart", offset=1)]),
            "order": csv([order]),
            "line": csv(lines),
            "quarantine": csv([quarantine]),
        },
        {"t.clickstream": {"0": 10}},
    )
    assert (out.skipped, out.records_in, out.stored, out.quarantined, out.duplicates) == (False, 4, 3, 1, 0)
    assert scalar(settings, "SELECT count(*) FROM clickstream_events") == 2
    assert scalar(settings, "SELECT count(*) FROM order_lines") == 2
    assert scalar(settings, "SELECT revenue FROM kpi_revenue_minute WHERE category = 'toys'") == 20
    assert scalar(settings, "SELECT page_views + add_to_carts + purchases FROM kpi_funnel_minute") == 3
    assert scalar(settings, "SELECT active_sessions FROM kpi_active_sessions_minute") == 1
    assert scalar(settings, "SELECT raw FROM quarantine").tobytes() == b"\x01\x02"
    assert scalar(settings, "SELECT end_offsets FROM sink_ledger WHERE batch_id = 1") == {"t.clickstream": {"0": 10}}


def test_a_replayed_batch_is_skipped_by_the_ledger(sink):
    settings, s = sink
    batch = {"click": csv([click(IDS[0])])}
    assert not s.write(7, batch, {}).skipped
    assert s.write(7, batch, {}).skipped
    assert s.already_written(7)
    assert scalar(settings, "SELECT count(*) FROM clickstream_events") == 1
    assert scalar(settings, "SELECT page_views FROM kpi_funnel_minute") == 1


def test_a_resent_event_in_a_later_batch_is_stored_once_and_counted_once(sink):
    settings, s = sink
    s.write(1, {"click": csv([click(IDS[0], offset=0)])}, {})
    out = s.write(2, {"click": csv([click(IDS[0], offset=5), click(IDS[0], offset=6), click(IDS[1], offset=7)])}, {})
    assert (out.stored, out.duplicates) == (1, 2)
    assert scalar(settings, "SELECT count(*) FROM clickstream_events") == 2
    assert scalar(settings, "SELECT page_views FROM kpi_funnel_minute") == 2
    assert scalar(settings, "SELECT active_sessions FROM kpi_active_sessions_minute") == 1


def test_a_batch_whose_staged_rows_are_not_what_it_read_never_commits(sink):
    """The per-partition check: the batch read 3 records of t.clickstream/0 but only 2 reach the staging table (as
    lost staging would leave it), so nothing commits; given all 3, the same batch commits. And a row from outside
    the batch's offsets is refused too."""
    settings, s = sink
    rows = [click(IDS[i], offset=i) for i in range(3)]
    ends = {"t.clickstream": {"0": 3}}
    read = Read({("t.clickstream", 0): 3}, start={"t.clickstream": {0: 0}}, end={"t.clickstream": {0: 3}})
    with pytest.raises(StagingMismatch, match=r"t\.clickstream/0: 2 rows staged of the 3 read"):
        s.write(4, {"click": csv(rows[:2])}, ends, read=read)
    with pytest.raises(StagingMismatch, match="offsets 0-3 staged, outside the batch's range 0-3"):
        s.write(4, {"click": csv([*rows[:2], click(IDS[3], offset=3)])}, ends, read=read)
    assert scalar(settings, "SELECT count(*) FROM sink_ledger") == 0
    assert scalar(settings, "SELECT count(*) FROM clickstream_events") == 0
    assert s.write(4, {"click": csv(rows)}, ends, read=read).stored == 3


def test_a_failure_inside_the_transaction_leaves_nothing(sink):
    settings, s = sink

    def explode(_new_quarantine):
        raise RuntimeError("dead-letter topic down")

    with pytest.raises(RuntimeError):
        s.write(3, {"click": csv([click(IDS[0])])}, {}, before_commit=explode)
    assert scalar(settings, "SELECT count(*) FROM clickstream_events") == 0
    assert scalar(settings, "SELECT count(*) FROM sink_ledger") == 0
    assert not s.write(3, {"click": csv([click(IDS[0])])}, {}).skipped


def test_a_replayed_batch_stores_nothing_twice_and_names_only_new_quarantine(sink):
    """The same records again under new batch ids (a replay): facts are duplicates, the quarantined record is not
    new (so it is not published again), KPIs stay, and the ledger marks the batch a replay."""
    settings, s = sink
    bad = f"t.clickstream,0,9,{T0},schema,not_confluent_framing,bad,,\\x0102"
    rows = {"click": csv([click(IDS[0]), click(IDS[1], offset=1)]), "quarantine": csv([bad])}
    published = []
    first = s.write(1, rows, {"t.clickstream": {"0": 10}}, before_commit=published.append)
    kpis = scalar(settings, "SELECT page_views FROM kpi_funnel_minute")
    again = s.write(2, rows, {"t.clickstream": {"0": 10}}, before_commit=published.append, replay=True)
    assert (first.stored, first.quarantined, first.new_quarantine) == (2, 1, {("t.clickstream", "0", "9")})
    assert (again.stored, again.duplicates, again.quarantined, again.new_quarantine) == (0, 2, 0, frozenset())
    assert published == [first.new_quarantine, frozenset()]
    assert scalar(settings, "SELECT page_views FROM kpi_funnel_minute") == kpis == 2
    assert scalar(settings, "SELECT count(*) FROM quarantine") == 1
    assert scalar(settings, "SELECT string_agg(replay::text, ',' ORDER BY batch_id) FROM sink_ledger") == "false,true"


def test_rows_land_in_their_day_and_strays_in_the_default_partition(sink):
    settings, s = sink
    s.write(1, {"click": csv([click(IDS[0]), click(IDS[1], offset=1, event_time="2019-03-01 08:00:00Z")])}, {})
    with connect(settings, "reader") as conn, conn.cursor() as cur:
        cur.execute("SELECT tableoid::regclass::text, event_time::date FROM clickstream_events ORDER BY event_time")
        (stray, _), (day_part, day) = cur.fetchall()
    assert stray == "clickstream_events_default"
    assert day == NOW.date()  # the session's day is the UTC day, whatever the server's zone
    assert day_part == f"clickstream_events_{NOW:%Y%m%d}"


def test_creating_a_partition_moves_its_rows_out_of_the_default(sink):
    settings, s = sink
    today = NOW.date()
    ahead = today + dt.timedelta(days=9)  # partitions exist 7 days ahead
    s.write(1, {"click": csv([click(IDS[0], event_time=f"{ahead} 08:00:00Z")])}, {})
    assert scalar(settings, "SELECT tableoid::regclass::text FROM clickstream_events") == "clickstream_events_default"
    with connect(settings, "writer") as conn, conn.cursor() as cur:
        cur.execute("SELECT ensure_daily_partitions_on(%s, 10)", (today,))
    assert (
        scalar(settings, "SELECT tableoid::regclass::text FROM clickstream_events")
        == f"clickstream_events_{ahead:%Y%m%d}"
    )


def partitions(settings) -> set[str]:
    with connect(settings, "reader") as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'clickstream_events'::regclass"
        )
        return {name for (name,) in cur.fetchall()}


def test_the_upkeep_works_from_the_day_it_is_given(sink, tmp_path):
    """A year ahead: the window around that day is created and a row of that day moves out of the default
    partition; the current partitions are dropped only by the archive, after their export (this test has its own
    database), with the default 7-day hot window."""
    settings, s = sink
    settings = settings.model_copy(update={"archive_dir": tmp_path / "archive"})
    today = NOW.date()
    later = today + dt.timedelta(days=365)
    s.write(1, {"click": csv([click(IDS[0], event_time=f"{later} 12:00:00Z")])}, {})
    before = partitions(settings)
    assert f"clickstream_events_{today:%Y%m%d}" in before

    with connect(settings, "writer") as conn, conn.cursor() as cur:
        created = ensure_partitions(cur, later)
    window = {f"clickstream_events_{later + dt.timedelta(days=d):%Y%m%d}" for d in range(-2, 8)}
    assert partitions(settings) == window | before, "no partition is dropped without an archive"
    assert created == 3 * len(window)  # clickstream_events, orders and order_lines
    assert (
        scalar(settings, "SELECT tableoid::regclass::text FROM clickstream_events")
        == f"clickstream_events_{later:%Y%m%d}"
    )

    archived = tier(settings, later)
    assert partitions(settings) == window | {"clickstream_events_default"}
    assert {f"clickstream_events_{a.day:%Y%m%d}" for a in archived if a.table == "clickstream_events"} == before - {
        "clickstream_events_default"
    }

    with connect(settings, "writer") as conn, conn.cursor() as cur:
        assert ensure_partitions(cur, later) == 0  # idempotent for the same day
