"""Log rotation under .runtime/logs: copy, truncate, shift, and a writer that keeps appending."""

from __future__ import annotations

import subprocess
import sys

from core.settings import Settings
from infra.runtime.logs import rotate, rotate_all
from tests.fixtures.waiting import wait_for


def test_a_log_past_its_size_is_copied_shifted_and_emptied(tmp_path):
    log = tmp_path / "kafka.log"
    for generation in range(4):
        log.write_bytes(f"generation {generation}\n".encode() * 100)
        assert rotate(log, max_bytes=100, keep=2)
    assert log.stat().st_size == 0
    assert (tmp_path / "kafka.log.1").read_bytes().startswith(b"generation 3")
    assert (tmp_path / "kafka.log.2").read_bytes().startswith(b"generation 2")
    assert not (tmp_path / "kafka.log.3").exists(), "only `keep` copies are kept"
    assert not rotate(log, max_bytes=100, keep=2), "a small log is left alone"


def test_a_process_appending_to_its_log_goes_on_writing_into_the_emptied_file(tmp_path):
    settings = Settings(runtime_dir=tmp_path, log_max_mb=1)
    log = tmp_path / "logs" / "broker.log"
    log.parent.mkdir()
    done = tmp_path / "stop"
    # Writes until told to stop: the test waits for conditions, not for a fixed run time.
    writer = (
        "import pathlib, sys\nstop = pathlib.Path(sys.argv[1])\n"
        "while not stop.exists():\n    print('x' * 10000, flush=True)\n"
    )
    with open(log, "ab") as out:
        child = subprocess.Popen([sys.executable, "-c", writer, str(done)], stdout=out)
    try:
        wait_for(lambda: log.stat().st_size > 1024 * 1024, 30, "the log to pass 1 MB")
        assert rotate_all(settings) == [log]
        copied = (tmp_path / "logs" / "broker.log.1").stat().st_size
        assert copied > 1024 * 1024
        wait_for(lambda: log.stat().st_size > 0, 30, "the writer to go on writing after the rotation")
        done.touch()
        child.wait(30)
    finally:
        child.kill()
    assert log.stat().st_size < copied + 1024 * 1024, "no hole of the old size before the new lines"
    assert b"\x00" not in log.read_bytes(), "the writer went on at the new end (a hole would be NUL bytes)"


def test_a_log_that_does_not_exist_yet_is_not_rotated_and_not_warned_about(tmp_path, caplog):
    from infra.runtime.logs import rotate

    assert rotate(tmp_path / "stream.log", 1, 3) is False
    assert not caplog.records
