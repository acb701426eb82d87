"""The lease's pure parts: when a holder counts as gone or stale, and what lag Spark's progress reports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from streaming.job import source_lag
from streaming.lease import LeaseRow, session_name


def row(holder: str, released: bool = False, age_s: float = 0.1) -> LeaseRow:
    return LeaseRow(1, holder, Path("/x"), released, age_s, None, None, 60.0)


def test_a_holder_is_gone_when_it_released_or_its_process_ended_here_and_stale_after_the_ttl():
    here = socket.gethostname()
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    assert row(f"{here}:{os.getpid()}").free(3.0) is False, "a live holder renewing is not free"
    assert row(f"{here}:{ended.pid}").gone(), "its process ended"
    assert row(f"{here}:{os.getpid()}", released=True).gone()
    assert row(f"{here}:{os.getpid()}", age_s=3.5).free(3.0), "stale: not renewed for the TTL"
    assert not row(f"another-host:{ended.pid}").gone(), "a process elsewhere cannot be seen: only staleness counts"


def test_a_sessions_name_carries_the_epoch_within_postgres_limit():
    assert session_name("shopstream", 7) == "shopstream-stream shopstream e7"
    assert len(session_name("p" * 80, 123).encode()) <= 63


def test_the_lag_is_latest_less_end_over_every_partition_and_unknown_without_offsets():
    # As a progress's JSON has them: the Kafka source's offsets are objects.
    source = {"latestOffset": {"t": {"0": 150, "1": 90}}, "endOffset": {"t": {"0": 100, "1": 90}}}
    assert source_lag([source]) == 50
    assert source_lag([{"latestOffset": None, "endOffset": None}]) is None
    assert source_lag([]) == 0


def test_the_checkpoint_probe_writes_where_it_can_and_the_wait_ends_on_stop(tmp_path):
    """A full checkpoint disk restarts the query as soon as its folder takes a write (streaming.job.writable);
    before the query made its folder, the nearest existing parent is probed."""
    import threading

    from streaming.job import wait_until_writable, writable

    assert writable(tmp_path) and not list(tmp_path.iterdir()), "the probe file is removed"
    assert writable(tmp_path / "not" / "made" / "yet")
    assert not writable(Path("/proc/self/net"))  # a folder nothing can be written to, even as root
    stop = threading.Event()
    stop.set()
    assert wait_until_writable(Path("/proc/self/net"), stop, every_s=0.01) is False
