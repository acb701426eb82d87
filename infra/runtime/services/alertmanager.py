"""Alertmanager from Debian's package: routes Prometheus's alerts to a receiver.

The shared config is monitoring/alertmanager/alertmanager.yml. When the
alert_webhook_url setting is set, the local copy sends every alert there.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import httpx
import yaml

from core.exceptions import DependencyMissing
from infra.runtime.base import Service, answers_ok

CONFIG = Path(__file__).resolve().parents[3] / "monitoring" / "alertmanager" / "alertmanager.yml"


class Alertmanager(Service):
    name = "alertmanager"
    ports = (("alertmanager_port", "alertmanager_port"),)

    @staticmethod
    def binary() -> str:
        path = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        if path is None:
            raise DependencyMissing(
                "Alertmanager is missing: run `apt-get install prometheus-alertmanager` (or `make setup`)"
            )
        return path

    @property
    def config_file(self) -> Path:
        return self.home / "alertmanager.yml"

    def config(self) -> dict:
        """The shared config, with every alert routed to the webhook when one is set. The receiver is named after
        the URL: Alertmanager remembers what it sent per receiver, so a new webhook hears of alerts already
        firing instead of waiting out the repeat interval."""
        config = yaml.safe_load(CONFIG.read_text())
        url = self.settings.alert_webhook_url
        if url:
            name = f"webhook-{hashlib.sha1(url.encode()).hexdigest()[:8]}"
            config["receivers"].append({"name": name, "webhook_configs": [{"url": url, "send_resolved": True}]})
            config["route"]["receiver"] = name
        return config

    def prepare(self) -> None:
        self.config_file.write_text(yaml.safe_dump(self.config(), sort_keys=False))

    def reconfigure(self) -> None:
        """Write the config from the current settings and have the running Alertmanager reload it."""
        self.prepare()
        httpx.post(f"{self.settings.alertmanager_url}/-/reload", timeout=10).raise_for_status()

    def command(self) -> list[str]:
        s = self.settings
        return [
            self.binary(),
            f"--config.file={self.config_file}",
            f"--storage.path={self.home / 'data'}",
            f"--web.listen-address={s.host}:{s.alertmanager_port}",
            "--cluster.listen-address=",  # one instance: no gossip port
            "--log.level=warn",
        ]

    def healthy(self) -> bool:
        return answers_ok(f"{self.settings.alertmanager_url}/-/ready")

    def version(self) -> str:
        out = subprocess.run([self.binary(), "--version"], check=False, capture_output=True, text=True)
        return (out.stdout or out.stderr).split()[2]

    def address(self) -> str:
        return self.settings.alertmanager_url
