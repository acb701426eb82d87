"""Exactly-once under SIGKILL of the stream job inside a sink transaction, with the batch in flight already logged as
committed by Spark (the overlapped sink's sharpest moment)."""

from __future__ import annotations

import pytest

from infra.orchestration.harness import PipelineRun
from infra.orchestration.processes import Producing, StreamProcess
from producers.options import ProduceOptions
from tests.fixtures.pipeline import (
    ALL_FAULTS,
    UNTIL_FINISHED_S,
    ledger_newest,
    ledger_rows,
    newest_commit,
    wait_for_open_transaction,
)
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.slow


def test_a_sigkill_inside_a_sink_transaction_loses_and_duplicates_nothing(pipeline_env):
    """The job killed while its sink holds a transaction that has written rows (not committed) for a batch Spark has
    already logged as committed, then started again on the same checkpoint: the sharpest moment for exactly-once.
    Started as it was, Spark would skip that batch; the start rewinds the checkpoint to the ledger and runs it again.
    (`shopstream chaos` kills at random moments and at every stage, many times: scenarios job-sigkill and
    jvm-kill.)"""
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
    stream.start()
    committed = wait_for(lambda: ledger_rows(settings), 90, "the first commit")
    checkpoint = options.checkpoint(settings)
    seen = []
    for _ in range(3):  # the batch may commit between the look and the kill (a few ms of its ~50): then once more
        wait_for_open_transaction(settings, timeout=90, ahead_of=checkpoint)  # killed right when it is seen
        stream.kill()
        seen.append((newest_commit(checkpoint), ledger_newest(settings)))
        stream.start()
        if seen[-1][0] is not None and seen[-1][0] > seen[-1][1]:
            break
    assert seen[-1][0] is not None and seen[-1][0] > seen[-1][1], f"never killed ahead of the ledger: {seen}"
    wait_for(lambda: ledger_rows(settings) > committed + 1, 90, "commits after the restart")
    producing.finish(120)  # what it was for has happened: no need to produce on
    run.mark_end()
    try:
        run.drain()
    finally:
        stream.stop()
    manifest = producing.result.manifest
    s = run.summary(manifest.unique_events)
    assert (s.lost, s.duplicates_in_db) == (0, 0)
    assert s.stored + s.quarantined == manifest.unique_events
    assert s.quality == manifest.to_dict()["quality"]
