"""The report's latency join between facts and ledger rows, against the real PostgreSQL."""

from __future__ import annotations

from core.database import connect
from monitoring.report import WINDOW_FACTS
from streaming.sink import PostgresSink
from tests.fixtures.sink_rows import IDS, click, csv


def test_after_a_checkpoint_reset_each_fact_joins_only_its_own_batch(database):
    """A new checkpoint starts its batch ids at 0 again: batch 0 exists twice in the ledger."""
    old, new = PostgresSink(database, "p:checkpoint-1"), PostgresSink(database, "p:checkpoint-2")
    try:
        old.write(0, {"click": csv([click(IDS[0], offset=0), click(IDS[1], offset=1)])}, {"t.clickstream": {"0": 2}})
        new.write(0, {"click": csv([click(IDS[2], offset=2), click(IDS[3], offset=3)])}, {"t.clickstream": {"0": 4}})
    finally:
        old.close()
        new.close()
    with connect(database, "reader") as conn, conn.cursor() as cur:
        cur.execute(WINDOW_FACTS, {"minutes": 60, "late_s": 5, "late_min_s": 1})
        rows = cur.fetchall()
    conn.close()
    assert len(rows) == 4  # joined on batch id alone, each fact would match both ledger rows: 8
