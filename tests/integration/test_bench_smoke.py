"""The benchmark harnesses run end to end (short smoke runs; no timing is asserted, so the job does not warm up)."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def bench(*args: str, timeout: float = 600) -> None:
    """`shopstream bench ARGS` in a child process; it must succeed."""
    out = subprocess.run(
        [sys.executable, "-m", "infra", "bench", *args], capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, out.stderr[-2000:]


def test_bench_producer_smoke(running_stack, tmp_path):
    bench("producer", "--duration", "2", "--json", str(tmp_path / "p.json"), timeout=120)
    result = json.loads((tmp_path / "p.json").read_text())
    assert result["events"] > 0 and result["failed"] == 0


def test_bench_e2e_smoke_runs_shopstream_and_a_peer(running_stack, tmp_path):
    """Shopstream and the Quix peer (its own venv, its own process); the plain consumer runs in the catch-up smoke."""
    bench("e2e", "--smoke", "--systems", "shopstream,quix", "--no-job-warmup", "--out", str(tmp_path))
    report = json.loads((tmp_path / "bench.json").read_text())
    assert {lv["system"] for lv in report["levels"]} == {"shopstream", "quix"}
    for lv in report["levels"]:
        assert lv["produced"] > 0 and lv["lost"] == 0 and lv["duplicates_in_db"] == 0
        assert {f"consumer ({lv['system']})", "producer", "kafka", "postgres"} <= set(lv["resources"])
    assert "System throughput under load" in (tmp_path / "bench.md").read_text()
    assert (tmp_path / "bench.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_catchup_drains_a_backlog_exactly(running_stack, tmp_path):
    bench("catchup", "--events", "3000", "--systems", "shopstream,plain", "--no-job-warmup", "--out", str(tmp_path))
    results = json.loads((tmp_path / "catchup.json").read_text())["results"]
    assert [r["system"] for r in results] == ["shopstream", "plain"]
    for r in results:
        assert (r["events"], r["stored"], r["lost"], r["duplicates_in_db"]) == (3000, 3000, 0, 0), r
        assert r["drain_s"] > 0 and r["start_s"] > 0
    assert "| shopstream | 3,000 |" in (tmp_path / "catchup.md").read_text()


def test_bench_step_times_each_step_and_accounts_for_every_event(running_stack, tmp_path):
    """The `fixed` variant alone (one job start, not two): the default, `adaptive`, is every other test's job."""
    bench("step", "--steps", "500:4,2000:4", "--variants", "fixed", "--no-job-warmup", "--out", str(tmp_path))
    results = json.loads((tmp_path / "step.json").read_text())["results"]
    assert [r["variant"] for r in results] == ["fixed"]
    assert "maxOffsetsPerTrigger 250" in results[0]["configuration"]  # 500/s × the 0.5 s trigger
    for r in results:
        assert (r["lost"], r["duplicates_in_db"]) == (0, 0), r
        assert sum(s["events"] for s in r["per_step"]) == r["produced"] > 0
        assert all(s["p95_ms"] > 0 for s in r["per_step"])
        seconds = r["timeline"]
        assert sum(s["appended"] for s in seconds) == sum(s["committed"] for s in seconds) == r["produced"]
        assert seconds[-1]["lag"] == 0 and max(s["lag"] for s in seconds) > 0
    assert "| fixed (trigger 0.5 s, maxOffsetsPerTrigger 250" in (tmp_path / "step.md").read_text()
    assert (tmp_path / "step.png").read_bytes()[:4] == b"\x89PNG"
