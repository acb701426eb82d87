"""The checkpoint rewound to the ledger: where a query resumes once the sink may commit a batch after Spark has.

The sink commits batch N in a thread of its own while Spark runs N+1 (streaming.batch), so Spark may write
``commits/N`` before N is in the database. The ledger, not the checkpoint, says what is stored; before every start
of the query the checkpoint is rewound to it: with B the ledger's newest batch of this checkpoint's query, the
commits above B and the offsets above B+1 go. Spark then runs B+1 again with the offsets it logged for it (an
offsets file without its commit is re-run as it was), and every later batch is planned anew from there.

``metadata`` (the query's id, and with it the ledger's key) and ``sources`` are never touched, and there is no state
store (the job keeps no state between batches), so nothing else in the checkpoint refers to the files removed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from core.exceptions import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rewound:
    """What a rewind removed: the batch ids of the commit and offsets files."""

    commits: tuple[int, ...] = ()
    offsets: tuple[int, ...] = ()


def logged_batches(folder: Path) -> dict[int, Path]:
    """The batch files of an offsets or commits folder, by batch id (Spark's temporary files left aside)."""
    if not folder.is_dir():
        return {}
    return {int(p.name): p for p in folder.iterdir() if p.name.isdigit()}


def rewind_to_ledger(checkpoint: Path, stored: int | None) -> Rewound:
    """Remove what ``checkpoint`` logged beyond the ledger: commits above ``stored`` (the ledger's newest batch of
    this query; None when it holds none) and offsets above ``stored`` + 1.

    One batch ahead is what the overlapped sink leaves when the process dies with a batch in flight. More than one
    (a database restored from a backup, a failover that lost commits) is rewound the same way while Spark still
    keeps the offsets of the batch after the ledger's (``spark.sql.streaming.minBatchesToRetain``); when it no
    longer does, that batch's range is unknown and the start is refused, with the way out in the message."""
    commits, offsets = logged_batches(checkpoint / "commits"), logged_batches(checkpoint / "offsets")
    newest = -1 if stored is None else stored
    extra_commits = sorted(b for b in commits if b > newest)
    extra_offsets = sorted(b for b in offsets if b > newest + 1)
    if not extra_commits and not extra_offsets:
        return Rewound()
    if extra_commits and newest + 1 not in offsets:
        raise ConfigError(
            f"checkpoint {checkpoint} has committed batch {max(commits)} but the database's ledger holds "
            f"{'no batch' if stored is None else f'batches up to {stored}'} of it, and the offsets of batch "
            f"{newest + 1} are no longer in the checkpoint (the database was restored or lost commits): move "
            "the checkpoint aside; a new one resumes from the ledger's newest offsets"
        )
    if len(extra_commits) > 1:
        log.warning(
            "checkpoint %s is %d batches ahead of the database's ledger (newest %s): the database lost commits; "
            "running batch %d again from its logged offsets",
            checkpoint,
            len(extra_commits),
            stored,
            newest + 1,
        )
    # Offsets before commits: a crash in between leaves commits above the newest offsets, which the next rewind
    # removes in turn (Spark never reads a commit without its offsets).
    for b in reversed(extra_offsets):
        _remove(offsets[b])
    for b in reversed(extra_commits):
        _remove(commits[b])
    rewound = Rewound(tuple(extra_commits), tuple(extra_offsets))
    log.info(
        "checkpoint rewound to the ledger (newest stored batch %s): commits %s and offsets %s removed; batch %d "
        "runs again",
        stored,
        list(rewound.commits),
        list(rewound.offsets),
        newest + 1,
    )
    return rewound


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_name(f".{path.name}.crc").unlink(missing_ok=True)  # Hadoop's checksum, where a checksummed FS wrote one
