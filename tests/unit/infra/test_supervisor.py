"""The stream job's supervisor: what it restarts, and what it leaves stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from core.exceptions import TEMPFAIL_EXIT
from infra.chaos.faults import free_port
from infra.orchestration.supervisor import exit_reason, supervise

#: A child that exits with the next code of the list each time it is started; -9 kills itself.
CHILD = """
import os, signal, sys
counter = sys.argv[1]
n = int(open(counter).read())
open(counter, "w").write(str(n + 1))
code = [75, -9, 2, 0][n]
if code < 0:
    os.kill(os.getpid(), signal.SIGKILL)
sys.exit(code)
"""


def test_a_job_whose_dependency_is_away_says_so_in_one_line_and_exits_tempfail():
    """No registry and no PostgreSQL at start (the job meets the database first, for its lease): the job says it
    is waiting, with no traceback, and exits 75 for its supervisor."""
    env = {
        **os.environ,
        "SHOPSTREAM_SCHEMA_REGISTRY_URL": f"http://127.0.0.1:{free_port()}",
        "SHOPSTREAM_POSTGRES_PORT": str(free_port()),
        "SHOPSTREAM_STREAM_METRICS_PORT": "0",
    }
    out = subprocess.run(
        [sys.executable, "-m", "infra", "stream", "--no-supervise"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == TEMPFAIL_EXIT, out.stderr[-2000:]
    assert "waiting:" in out.stderr and "PostgreSQL" in out.stderr and "is not reachable" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr


def test_the_supervisor_restarts_after_tempfail_and_sigkill_and_stops_on_a_permanent_error(tmp_path):
    counter = tmp_path / "starts"
    counter.write_text("0")
    code = supervise(
        [sys.executable, "-c", CHILD, str(counter)], dict(os.environ), threading.Event(), backoff_max_s=0.1
    )
    assert code == 2
    assert counter.read_text() == "3", "started again after the tempfail and after the SIGKILL, not after exit 2"
    assert exit_reason(TEMPFAIL_EXIT) == "dependency_unavailable"
    assert exit_reason(-9) == "signal_SIGKILL"


def test_health_says_the_job_is_not_there_in_one_line_and_exits_1():
    out = subprocess.run(
        [sys.executable, "-m", "infra", "health"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SHOPSTREAM_STREAM_METRICS_PORT": str(free_port())},
    )
    assert out.returncode == 1
    assert "the stream job does not answer" in out.stdout and "Traceback" not in out.stderr


#: A driver of a pair: records its slot, then waits for a signal (no fixed sleep); SIGTERM makes it exit 0.
PAIR_CHILD = """
import os, signal, sys
path = os.path.join(sys.argv[1], os.environ["SHOPSTREAM_STREAM_DRIVER_SLOT"])
with open(path + ".tmp", "w") as f:  # renamed into place: a reader never sees the file empty
    f.write(str(os.getpid()))
os.replace(path + ".tmp", path)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
signal.pause()
"""


def test_a_pair_runs_two_drivers_restarts_a_fenced_one_and_ends_both_when_one_ends_cleanly(tmp_path):
    """`stream --standby`: two supervised drivers (slots 0 and 1). One that exits fenced (76) is started again; a
    clean exit of either ends the other too (SIGTERM), and the pair returns."""
    import signal
    import time

    from core.exceptions import FENCED_EXIT
    from infra.orchestration.supervisor import supervise_pair

    result: list[int] = []
    pair = threading.Thread(
        target=lambda: result.append(
            supervise_pair(
                [sys.executable, "-c", PAIR_CHILD, str(tmp_path)],
                dict(os.environ),
                backoff_max_s=0.1,
                decided=lambda pid: (tmp_path / "0").exists(),  # the first has recorded itself
            )
        ),
        daemon=True,  # a failed assertion must not leave pytest waiting on the pair at exit
    )
    pair.start()
    deadline = time.monotonic() + 30
    while not ((tmp_path / "0").exists() and (tmp_path / "1").exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    first = int((tmp_path / "0").read_text())
    # The second started only once the first had recorded itself.
    assert (tmp_path / "1").stat().st_mtime_ns >= (tmp_path / "0").stat().st_mtime_ns
    os.kill(first, signal.SIGKILL)  # restarted, like a fenced one
    while int((tmp_path / "0").read_text()) == first and time.monotonic() < deadline:
        time.sleep(0.05)
    assert int((tmp_path / "0").read_text()) != first, "slot 0 was started again"
    os.kill(int((tmp_path / "1").read_text()), signal.SIGTERM)  # exits 0: the pair ends
    pair.join(30)
    assert not pair.is_alive() and result == [0]
    assert exit_reason(FENCED_EXIT) == "fenced"
