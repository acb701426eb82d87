"""Prometheus from Debian's package, run with the config in monitoring/prometheus."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from core.exceptions import DependencyMissing
from infra.runtime.base import Service, answers_ok
from infra.runtime.services.spark import cluster, installed_workers

MONITORING = Path(__file__).resolve().parents[3] / "monitoring" / "prometheus"


class Prometheus(Service):
    name = "prometheus"
    ports = (("prometheus_port", "prometheus_port"),)

    @staticmethod
    def binary() -> str:
        path = shutil.which("prometheus")
        if path is None:
            raise DependencyMissing("Prometheus is missing: run `apt-get install prometheus` (or `make setup`)")
        return path

    @property
    def config_dir(self) -> Path:
        return self.home / "config"

    def targets(self) -> dict[str, list[dict]]:
        s = self.settings
        return {
            "prometheus": [{"targets": [f"{s.host}:{s.prometheus_port}"]}],
            "alertmanager": [{"targets": [f"{s.host}:{s.alertmanager_port}"]}],
            "shopstream": [
                {"targets": [f"{s.host}:{s.producer_metrics_port}"], "labels": {"component": "producer"}},
                {"targets": [f"{s.host}:{s.stream_metrics_port}"], "labels": {"component": "stream"}},
                {"targets": [f"{s.host}:{s.exporter_metrics_port}"], "labels": {"component": "exporter"}},
            ],
            "shopstream-standby": [
                {"targets": [f"{s.host}:{s.stream_standby_metrics_port}"], "labels": {"component": "stream"}},
            ],
            # The local Spark standalone cluster's master and workers, while they run (`up --spark-workers N`).
            "spark": [
                d.metrics_target() for d in cluster(s, installed_workers(s.runtime_dir)) if d.process.pid() is not None
            ],
        }

    def write_targets(self) -> None:
        """targets/*.json from the settings and what runs now; Prometheus reads them again when they change."""
        (self.config_dir / "targets").mkdir(parents=True, exist_ok=True)
        for job, groups in self.targets().items():
            (self.config_dir / "targets" / f"{job}.json").write_text(json.dumps(groups, indent=2))

    def prepare(self) -> None:
        """Lay out config/ with the shared prometheus.yml and rules, plus targets from settings."""
        self.write_targets()
        shutil.copyfile(MONITORING / "prometheus.yml", self.config_dir / "prometheus.yml")
        rules = self.config_dir / "rules"
        if rules.is_symlink() or rules.exists():
            rules.unlink() if rules.is_symlink() else shutil.rmtree(rules)
        rules.symlink_to(MONITORING / "rules", target_is_directory=True)

    def command(self) -> list[str]:
        s = self.settings
        return [
            self.binary(),
            f"--config.file={self.config_dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.home / 'data'}",
            f"--web.listen-address={s.host}:{s.prometheus_port}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=7d",
            "--log.level=warn",
        ]

    @property
    def url(self) -> str:
        """The local server's (SHOPSTREAM_PROMETHEUS_URL names another, for `report`)."""
        return f"http://{self.settings.host}:{self.settings.prometheus_port}"

    def healthy(self) -> bool:
        return answers_ok(f"{self.url}/-/ready")

    def version(self) -> str:
        out = subprocess.run([self.binary(), "--version"], capture_output=True, text=True)
        return (out.stdout or out.stderr).split()[2]

    def address(self) -> str:
        return self.url
