"""Exactly-once under SIGKILL of the stream job, at random moments and inside a sink transaction."""

from __future__ import annotations

import random
import time

import pytest

from core.database import connect
from infra.orchestration.harness import PipelineRun
from infra.orchestration.processes import Producing, StreamProcess
from producers.options import FaultRatios, ProduceOptions
from tests.fixtures.pipeline import UNTIL_FINISHED_S, ledger_rows
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.slow

ALL_FAULTS = FaultRatios(schema=0.01, data_type=0.01, completeness=0.015, business_rules=0.02)


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(pipeline_env):
    """Three incarnations of the job over one checkpoint: the first killed inside a sink transaction (rows written,
    not committed), the second at a random moment once it commits, the third drains. (`shopstream chaos` kills
    many more times, at every stage.)"""
    settings, options = pipeline_env
    options = options.model_copy(update={"max_offsets_per_trigger": 4000})  # many small batches
    stream = StreamProcess(settings, options)
    run = PipelineRun(settings, stream)
    run.mark_start()
    producing = Producing(
        settings,
        ProduceOptions(rate=1000, duration_s=UNTIL_FINISHED_S, faults=ALL_FAULTS, duplicate_ratio=0.01, run_id="crash"),
    )
    producing.start()
    rng = random.Random(11)
    kills = []
    for attempt in range(3):
        stream.start()
        if attempt == 2:
            break
        if attempt == 0:
            # in the middle of a sink transaction: killed right when it is seen open
            kills.append("in transaction" if _wait_for_open_transaction(settings, timeout=90) else "timeout")
        else:
            # a random moment once this incarnation is committing batches
            committed = ledger_rows(settings)
            wait_for(
                lambda committed=committed: ledger_rows(settings) > committed,
                60,
                "this incarnation's first commit",
                0.05,
            )
            time.sleep(rng.uniform(0, 1.5))
            kills.append("random")
        stream.kill()
    producing.finish(120)  # what it was for has happened: no need to produce on
    run.mark_end()
    try:
        run.drain()
    finally:
        stream.stop()
    manifest = producing.result.manifest
    s = run.summary(manifest.unique_events)
    assert kills == ["in transaction", "random"], kills
    assert (s.lost, s.duplicates_in_db) == (0, 0)
    assert s.stored + s.quarantined == manifest.unique_events
    assert s.quality == manifest.to_dict()["quality"]
    assert ledger_rows(settings) >= 4


def _wait_for_open_transaction(settings, timeout: float) -> bool:
    """Poll (one connection, ~1 ms apart) until the sink holds a transaction that has written rows."""
    conn = connect(settings, "admin", "postgres")
    conn.autocommit = True

    def sink_transaction_open() -> bool:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND usename = %s AND backend_xid IS NOT NULL",
                (settings.postgres_db, settings.writer_user),
            )
            return cur.fetchone()[0] > 0

    try:
        return wait_for(sink_transaction_open, timeout, "an open sink transaction", interval=0.001)
    except AssertionError:
        return False
    finally:
        conn.close()
