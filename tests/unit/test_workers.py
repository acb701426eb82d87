"""The suite's stack per pytest worker (tests/fixtures/workers.py): each worker's ports are its own, and asking for
more workers than there are port ranges is one line and exit code 2."""

import os
import subprocess
import sys

from core.settings import Settings
from tests.fixtures.workers import WORKER_PORT_STEP, max_workers, worker_environment


def test_each_worker_after_the_first_has_every_port_shifted_and_a_runtime_of_its_own():
    default = Settings()
    ports = {n for n in Settings.model_fields if n.endswith("_port") and getattr(default, n) > 0}
    assert worker_environment("gw0") == {}
    for n in range(1, max_workers()):
        env = worker_environment(f"gw{n}")
        assert env["SHOPSTREAM_RUNTIME_DIR"].endswith(f"{default.runtime_dir.name}-gw{n}")
        assert {k.removeprefix("SHOPSTREAM_").lower() for k in env} - {"runtime_dir"} == ports
        assert all(int(env[f"SHOPSTREAM_{p.upper()}"]) == getattr(default, p) + n * WORKER_PORT_STEP for p in ports)


def test_workers_share_the_users_own_services(monkeypatch):
    monkeypatch.setenv("SHOPSTREAM_BOOTSTRAP_SERVERS", "kafka.example:9092")
    assert worker_environment("gw1") == {}


def test_too_many_workers_is_one_line_and_exit_2():
    too_many = max_workers() + 1
    controller = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}  # as a user starts it
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", str(too_many), "-p", "no:cacheprovider", "tests/unit/test_lock.py"],
        capture_output=True,
        text=True,
        timeout=120,
        env=controller,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert (
        run.stderr.strip()
        == f"Exit: -n {too_many}: at most {max_workers()} pytest workers, each with a stack of its own"
    )
    assert "Traceback" not in run.stdout + run.stderr
