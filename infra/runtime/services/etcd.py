"""etcd from Debian's package (etcd-server 3.4): the store Patroni keeps its leader key in, when the local
PostgreSQL runs with replicas (`up --postgres-replicas N`). One member, on loopback, data under .runtime/etcd.

The packages (patroni, etcd-server) install on first use of the flag, as pgAdmin's do: never in `make setup`.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess

from core.exceptions import DependencyMissing
from infra.runtime.base import Service, answers_ok

log = logging.getLogger(__name__)

#: Debian's packages of the PostgreSQL HA mode: Patroni 3.0.2 and etcd 3.4 (bookworm).
HA_PACKAGES = ("patroni", "etcd-server", "etcd-client")


def ensure_ha_packages() -> None:
    """Patroni and etcd from Debian, installed on first use (about 10 s) when we are root."""
    if shutil.which("patroni") and shutil.which("etcd"):
        return
    fix = f"run `apt-get install {' '.join(HA_PACKAGES)}`, or leave out --postgres-replicas"
    if os.geteuid() != 0:
        raise DependencyMissing(f"Patroni and etcd are missing: {fix}")
    log.info("installing %s from Debian (first use of --postgres-replicas)", ", ".join(HA_PACKAGES))
    command = ["apt-get", "install", "-y", "--no-install-recommends", *HA_PACKAGES]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:  # package lists may be missing or stale on a fresh machine
        subprocess.run(["apt-get", "update"], capture_output=True, env=env)
        done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0 or not (shutil.which("patroni") and shutil.which("etcd")):
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DependencyMissing(f"could not install Patroni and etcd ({tail[0]}): {fix}")


class Etcd(Service):
    name = "etcd"
    ports = (("etcd_port", "etcd_port"), ("etcd_peer_port", "etcd_peer_port"))

    @property
    def client_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.etcd_port}"

    def prepare(self) -> None:
        ensure_ha_packages()

    def command(self) -> list[str]:
        s = self.settings
        peer = f"http://{s.host}:{s.etcd_peer_port}"
        return [
            shutil.which("etcd") or "etcd",
            "--name=shopstream",
            f"--data-dir={self.home / 'data'}",
            f"--listen-client-urls={self.client_url}",
            f"--advertise-client-urls={self.client_url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=shopstream={peer}",
            "--initial-cluster-state=new",
            "--log-level=warn",
            "--logger=zap",
        ]

    def healthy(self) -> bool:
        return answers_ok(f"{self.client_url}/health")

    def version(self) -> str:
        out = subprocess.run(["etcd", "--version"], capture_output=True, text=True, check=False)
        first = (out.stdout or "").split()
        return first[2] if len(first) > 2 else "?"

    def address(self) -> str:
        return self.client_url
