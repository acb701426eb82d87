"""The job on a Spark standalone cluster (`up --spark-workers 2`): a master and two workers,
local processes started through pyspark's own spark-class, executors in JVMs of their own."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from infra.runtime import stack
from producers.options import ProduceOptions
from tests.fixtures.dashboards import panel_queries
from tests.fixtures.faults import child_pids
from tests.fixtures.pipeline import UNTIL_FINISHED_S, drain_and_account, ledger_rows, start_job_and_producer
from tests.fixtures.processes import processes_mentioning
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.slow


def java_processes_with(text: str) -> list[int]:
    return list(processes_mentioning(text))


def executors(settings) -> list[int]:
    """The executor JVMs our local workers launched (each runs in a folder under its worker's work dir)."""

    def cwd(pid: int) -> str:
        try:
            return os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            return ""

    return [
        pid
        for pid in java_processes_with("CoarseGrainedExecutorBackend")
        if cwd(pid).startswith(str(settings.runtime_dir / "spark-worker-"))
    ]


@pytest.fixture(scope="module")
def spark_cluster(running_stack):
    started = stack.up(running_stack, spark_workers=2)
    yield running_stack
    for service in reversed(stack.spark_cluster(running_stack)):
        if service.name in started:
            service.stop()
    if started:  # nothing of the cluster is left: master, workers, executors
        assert java_processes_with(running_stack.spark_master_url) == []
        assert executors(running_stack) == []


def test_exactly_once_with_the_job_on_the_standalone_cluster(spark_cluster, pipeline_env):
    """...and an executor killed with SIGKILL mid-run: its tasks run again elsewhere, nothing lost or doubled."""
    _, options = pipeline_env
    settings = pipeline_env[0]
    options = options.model_copy(update={"master": spark_cluster.spark_master_url})
    run, stream, producing = start_job_and_producer(
        settings, options, ProduceOptions(rate=1000, duration_s=UNTIL_FINISHED_S, run_id="cluster")
    )
    try:
        wait_for(lambda: ledger_rows(settings) >= 2, 120, "commits from the job on the cluster")
        running = wait_for(lambda: executors(spark_cluster), 30, "the job's executors on the workers")
        assert len(running) == 2, running  # one executor on each worker (1 core each)
        # Prometheus scrapes the master and both workers (Spark's own endpoints): the cluster dashboard has data.
        wait_for(
            lambda: _prometheus(settings, 'sum(metrics_worker_coresUsed_Value{job="spark"})') == [2.0],
            30,
            "Prometheus to see both workers' cores in use",
        )
        for name, expr in panel_queries(cluster=True):
            assert _prometheus(settings, expr), f"{name}: `{expr}` returned no data"
        os.kill(running[0], signal.SIGKILL)
        killed_at = time.monotonic()
        committed = ledger_rows(settings)
        wait_for(lambda: ledger_rows(settings) > committed + 1, 120, "commits after the executor's death")
        assert stream.alive() and len(child_pids(stream.proc.pid)) == 1, "the job itself was not restarted"
        recovered_s = time.monotonic() - killed_at
        print(f"executor killed: commits went on after {recovered_s:.1f} s")
    finally:
        producing.finish(120)  # what it was for has happened: no need to produce on
    drain_and_account(run, producing.result.manifest)


def _prometheus(settings, expr: str) -> list[float]:
    answer = httpx.get(f"{settings.prometheus_endpoint}/api/v1/query", params={"query": expr}, timeout=10).json()
    return [float(r["value"][1]) for r in answer["data"]["result"]]
