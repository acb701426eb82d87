"""A Spark standalone cluster as local processes (`shopstream up --spark-workers N`).

Started through pyspark's own ``bin/spark-class``, so the master, the workers and the
executors they launch run the same Spark jars and Java as the driver. Everything binds
to loopback (SPARK_LOCAL_IP); the master's UI too. The job then runs on it with
``shopstream stream --master spark://127.0.0.1:7077``; its connector jars reach the
executors through the driver's file server (``spark.jars``), as on any cluster.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from infra.runtime import jvm
from infra.runtime.base import Service

#: Spark's Prometheus servlet on every daemon's UI: the master's at MASTER_METRICS_PATH, a worker's at
#: WORKER_METRICS_PATH (Prometheus's job "spark").
METRICS_CONF = Path(__file__).resolve().parents[2] / "config" / "spark-metrics.properties"
MASTER_METRICS_PATH = "/metrics/master/prometheus/"  # the servlet redirects to the slash
WORKER_METRICS_PATH = "/metrics/prometheus/"


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def _master_state(settings) -> dict:
    try:
        return httpx.get(f"http://{settings.host}:{settings.spark_master_ui_port}/json/", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return {}


class SparkMaster(Service):
    name = "spark-master"
    ports = (("spark_master_port", "spark_master_port"), ("spark_master_ui_port", "spark_master_ui_port"))

    def env(self) -> dict[str, str]:
        java = jvm.spark_java()
        return {
            "SPARK_HOME": str(spark_home()),
            "JAVA_HOME": str(Path(java.path).parents[1]),
            "SPARK_LOCAL_IP": self.settings.host,
            "SPARK_LOG_DIR": str(self.home / "logs"),
            "SPARK_NO_DAEMONIZE": "1",
            "SPARK_DAEMON_JAVA_OPTS": f"-Dspark.metrics.conf={METRICS_CONF}",
        }

    def command(self) -> list[str]:
        s = self.settings
        return [
            str(spark_home() / "bin" / "spark-class"),
            "org.apache.spark.deploy.master.Master",
            "--host",
            s.host,
            "--port",
            str(s.spark_master_port),
            "--webui-port",
            str(s.spark_master_ui_port),
        ]

    def healthy(self) -> bool:
        return _master_state(self.settings).get("status") == "ALIVE"

    def version(self) -> str:
        import pyspark

        return pyspark.__version__

    def address(self) -> str:
        return f"{self.settings.spark_master_url} (UI http://{self.settings.host}:{self.settings.spark_master_ui_port})"

    def metrics_target(self) -> dict:
        """This daemon as a Prometheus file_sd target group."""
        return {
            "targets": [f"{self.settings.host}:{self.settings.spark_master_ui_port}"],
            "labels": {"__metrics_path__": MASTER_METRICS_PATH, "component": self.name},
        }


class SparkWorker(SparkMaster):
    """Worker ``index`` (1-based): registered with the master, offering spark_worker_cores and _memory."""

    ports = ()

    def __init__(self, settings, index: int):
        self.index = index
        self.name = f"spark-worker-{index}"
        super().__init__(settings)

    @property
    def ui_port(self) -> int:
        return self.settings.spark_worker_ui_port + self.index - 1

    def command(self) -> list[str]:
        s = self.settings
        return [
            str(spark_home() / "bin" / "spark-class"),
            "org.apache.spark.deploy.worker.Worker",
            s.spark_master_url,
            "--host",
            s.host,
            "--cores",
            str(s.spark_worker_cores),
            "--memory",
            s.spark_worker_memory,
            "--webui-port",
            str(self.ui_port),
            "--work-dir",
            str(self.home / "work"),
        ]

    def healthy(self) -> bool:
        """Registered and alive at the master (found by its UI address)."""
        mine = f":{self.ui_port}"
        return any(
            w.get("state") == "ALIVE" and w.get("webuiaddress", "").endswith(mine)
            for w in _master_state(self.settings).get("workers", [])
        )

    def address(self) -> str:
        return f"http://{self.settings.host}:{self.ui_port}"

    def metrics_target(self) -> dict:
        return {
            "targets": [f"{self.settings.host}:{self.ui_port}"],
            "labels": {"__metrics_path__": WORKER_METRICS_PATH, "component": self.name},
        }


def cluster(settings, workers: int) -> list[Service]:
    """The master and ``workers`` workers, in start order."""
    return [SparkMaster(settings), *(SparkWorker(settings, i) for i in range(1, workers + 1))]


def installed_workers(runtime_dir: Path) -> int:
    """How many workers this runtime folder has run (their folders), for `status` and `down`."""
    return len([p for p in runtime_dir.glob("spark-worker-*") if p.is_dir()]) if runtime_dir.exists() else 0
