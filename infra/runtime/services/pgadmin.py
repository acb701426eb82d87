"""pgAdmin 4 from PyPI, in a virtualenv of its own under .runtime/pgadmin (optional:
`shopstream up --with pgadmin`).

Server mode (a login, the pgadmin_email/pgadmin_password settings), bound to 127.0.0.1
only. The shopstream database is registered once for that login, as the read-only role,
whose password pgAdmin reads from a pgpass file in the login's storage folder: opening the
server asks nothing. pgAdmin's many dependencies (Flask, SQLAlchemy, cloud SDKs) stay out
of the project's own environment.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

from core.exceptions import DependencyMissing
from infra.runtime.base import Service, answers_ok
from infra.runtime.venv import ensure_venv

log = logging.getLogger(__name__)

REQUIREMENT = "pgadmin4==9.18"


class PgAdmin(Service):
    name = "pgadmin"
    ports = (("pgadmin_port", "pgadmin_port"),)

    @property
    def venv(self) -> Path:
        return self.home / "venv"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def _package_dir(self) -> Path:
        found = sorted(self.venv.glob("lib/python3*/site-packages/pgadmin4"))
        if not found:
            raise DependencyMissing(
                f"pgAdmin is not installed in {self.venv}: `shopstream up --with pgadmin` installs it"
            )
        return found[-1]

    def _install(self) -> None:
        """The venv with REQUIREMENT, made on first use (about a minute) and reused after that."""
        if not (self.venv / ".installed").exists():
            log.info("installing %s into %s (first use: about a minute)", REQUIREMENT, self.venv)
        ensure_venv(self.venv, REQUIREMENT, "leave out --with pgadmin")

    def _cli(self, *args: str) -> None:
        env = {
            **os.environ,
            "PGADMIN_SETUP_EMAIL": self.settings.pgadmin_email,
            "PGADMIN_SETUP_PASSWORD": self.settings.pgadmin_password.get_secret_value(),
        }
        done = subprocess.run(
            [str(self.venv / "bin" / "pgadmin4-cli"), *args], capture_output=True, text=True, env=env, cwd=self.home
        )
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise DependencyMissing(f"pgadmin4-cli {args[0]} failed: {tail[0]} (see {self.home})")

    def servers(self) -> dict:
        """The shopstream database, as the read-only role, its password in the login's pgpass ("/pgpass" is
        relative to the login's storage folder in server mode)."""
        s = self.settings
        reader = s.postgres("reader")
        server = {
            "Name": "shopstream (read-only)",
            "Group": "shopstream",
            "Host": reader.hosts[0],  # pgAdmin registers one host: the first of a failover list
            "Port": reader.ports[0],
            "MaintenanceDB": reader.dbname,
            "Username": reader.user,
            "SSLMode": reader.sslmode,
            "PassFile": "/pgpass",
        }
        if reader.ssl_ca_location:  # verify-ca / verify-full: the CA the connection model verifies with
            server["SSLRootCert"] = str(reader.ssl_ca_location)
        return {"Servers": {"1": server}}

    def prepare(self) -> None:
        s = self.settings
        self._install()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self._package_dir() / "config_local.py").write_text(
            "\n".join(
                [
                    "# Written by shopstream (infra/runtime/services/pgadmin.py) at each start.",
                    "SERVER_MODE = True",
                    f"DATA_DIR = {str(self.data_dir)!r}",
                    f"LOG_FILE = {str(self.data_dir / 'pgadmin4.log')!r}",
                    f"DEFAULT_SERVER = {s.host!r}",
                    f"DEFAULT_SERVER_PORT = {s.pgadmin_port}",
                    "UPGRADE_CHECK_ENABLED = False",
                    "MASTER_PASSWORD_REQUIRED = False",
                    "",
                ]
            )
        )
        if not (self.data_dir / "pgadmin4.db").exists():
            self._cli("setup-db")  # the login from PGADMIN_SETUP_EMAIL / _PASSWORD
        storage = self.data_dir / "storage" / s.pgadmin_email.replace("@", "_")
        storage.mkdir(parents=True, exist_ok=True)
        pgpass = storage / "pgpass"
        reader = s.postgres("reader")
        pgpass.write_text(
            "".join(
                f"{host}:{port}:*:{reader.user}:{reader.password.get_secret_value()}\n"
                for host, port in zip(reader.hosts, reader.ports, strict=True)
            )
        )
        pgpass.chmod(0o600)
        servers = json.dumps(self.servers(), indent=2)
        registered = self.home / "servers.json"
        if not registered.exists() or registered.read_text() != servers:
            registered.write_text(servers)
            self._cli("load-servers", str(registered), "--user", s.pgadmin_email, "--replace")

    def command(self) -> list[str]:
        return [str(self.venv / "bin" / "pgadmin4")]

    def healthy(self) -> bool:
        return answers_ok(f"{self.settings.pgadmin_url}/misc/ping")

    def version(self) -> str:
        return REQUIREMENT.split("==")[1]

    def address(self) -> str:
        return self.settings.pgadmin_url
