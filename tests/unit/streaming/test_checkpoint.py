"""The checkpoint rewound to the ledger (streaming.checkpoint), and the sink's per-partition check of what it staged."""

from __future__ import annotations

import pyarrow as pa
import pytest

from core.exceptions import ConfigError
from streaming.batch import records_by_partition
from streaming.checkpoint import Rewound, logged_batches, rewind_to_ledger
from streaming.sink import Read, staging_problems


def checkpoint_with(tmp_path, offsets: range, commits: range):
    for folder, ids in (("offsets", offsets), ("commits", commits)):
        (tmp_path / folder).mkdir()
        for b in ids:
            (tmp_path / folder / str(b)).write_text("v1\n")
        (tmp_path / folder / f".{max(ids, default=0) + 9}.tmp").write_text("")  # Spark's temporary file: not a batch
    (tmp_path / "metadata").write_text('{"id": "q"}')
    return tmp_path


def left(checkpoint, folder: str) -> list[int]:
    return sorted(logged_batches(checkpoint / folder))


def test_the_checkpoint_one_batch_ahead_is_rewound_to_the_batch_after_the_ledgers(tmp_path):
    """The process died with batch 5 in flight: Spark had committed 5 and planned 6, the database holds up to 4.
    Batch 5 runs again from its logged offsets."""
    checkpoint = checkpoint_with(tmp_path, range(7), range(6))  # offsets 0-6, commits 0-5: batch 6 was running
    assert rewind_to_ledger(checkpoint, 4) == Rewound(commits=(5,), offsets=(6,))
    assert (left(checkpoint, "offsets"), left(checkpoint, "commits")) == ([0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4])
    assert (checkpoint / "metadata").exists()


def test_a_checkpoint_in_step_with_the_ledger_or_behind_it_is_left_alone(tmp_path):
    checkpoint = checkpoint_with(tmp_path, range(7), range(6))
    assert rewind_to_ledger(checkpoint, 5) == Rewound()  # batch 6 runs again as Spark would anyway
    assert rewind_to_ledger(checkpoint, 6) == Rewound()  # committed, Spark's commit file not yet written
    assert (left(checkpoint, "offsets"), left(checkpoint, "commits")) == (list(range(7)), list(range(6)))


def test_a_query_whose_first_batch_never_reached_the_database_runs_it_again(tmp_path):
    checkpoint = checkpoint_with(tmp_path, range(2), range(1))
    assert rewind_to_ledger(checkpoint, None) == Rewound(commits=(0,), offsets=(1,))
    assert (left(checkpoint, "offsets"), left(checkpoint, "commits")) == ([0], [])


def test_a_database_that_lost_commits_is_caught_up_from_the_logged_offsets(tmp_path):
    checkpoint = checkpoint_with(tmp_path, range(10), range(10))
    assert rewind_to_ledger(checkpoint, 6) == Rewound(commits=(7, 8, 9), offsets=(8, 9))
    assert left(checkpoint, "offsets")[-1] == 7


def test_a_lost_batch_whose_offsets_spark_no_longer_keeps_refuses_the_start_with_the_way_out(tmp_path):
    checkpoint = checkpoint_with(tmp_path, range(30, 50), range(30, 50))  # 0-29 purged (minBatchesToRetain)
    with pytest.raises(ConfigError, match="move the checkpoint aside; a new one resumes from the ledger"):
        rewind_to_ledger(checkpoint, 12)
    assert left(checkpoint, "commits") == list(range(30, 50)), "nothing removed"


def test_staging_that_lost_rows_or_holds_offsets_outside_the_batch_never_commits():
    read = Read({("t", 0): 3, ("t", 1): 2}, start={"t": {0: 10, 1: 0}}, end={"t": {0: 13, 1: 2}})
    assert staging_problems([("t", 0, 3, 10, 12), ("t", 1, 2, 0, 1)], read) == []
    assert staging_problems([("t", 0, 3, 10, 12)], read) == ["t/1: 0 rows staged of the 2 read"]
    assert staging_problems([], read) == ["t/0: 0 rows staged of the 3 read", "t/1: 0 rows staged of the 2 read"]
    assert staging_problems([("t", 0, 3, 11, 13), ("t", 1, 2, 0, 1)], read) == [
        "t/0: offsets 11-13 staged, outside the batch's range 10-13"
    ]
    assert staging_problems([("t", 0, 3, 10, 12), ("t", 1, 2, 0, 1), ("u", 0, 1, 5, 5)], read) == [
        "u/0: 1 rows staged of the 0 read"
    ]
    unknown_start = Read({("t", 0): 1}, start={}, end={"t": {0: 13}})  # Spark no longer keeps the previous batch
    assert staging_problems([("t", 0, 1, 12, 12)], unknown_start) == []


def test_the_records_handed_over_are_counted_per_partition_without_an_orders_lines():
    table = pa.table(
        {
            "kind": ["click", "order", "line", "line", "quarantine", "click", "redrive"],
            "topic": ["c", "o", "o", "o", "c", "c", "c"],
            "partition": [0, 1, 1, 1, 0, 2, 2],
        }
    )
    assert records_by_partition(table) == {("c", 0): 2, ("o", 1): 1, ("c", 2): 2}
