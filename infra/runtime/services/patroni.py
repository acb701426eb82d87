"""The local PostgreSQL as a Patroni cluster (`up --postgres-replicas N`): member 1 and N standbys, each a
Patroni agent that runs its own postmaster, with etcd as the store of the leader key. All on loopback.

- **Member 1 is the server that ran before.** Its folder (.runtime/postgres) and data are kept; Patroni takes an
  existing data folder over as the leader of a new cluster. Member N lives in .runtime/postgres-N, cloned from
  the leader with pg_basebackup on its first start, and listens on postgres_port + 100 × (N - 1).
- **Synchronous, not strict** (`synchronous_mode: true`, `synchronous_mode_strict: false`): while a standby is in
  sync, a commit is acknowledged only once it has the commit on disk, so the loss of one member loses no
  acknowledged commit. A lone survivor still accepts writes (then nothing is copied until a standby is back).
- **Failover**: a leader key with a 10 s TTL, renewed every 2 s. When the leader's node is lost, a standby in sync
  takes the key and promotes itself. The old leader, back, rejoins as a standby (pg_rewind, which needs
  `wal_log_hints`, set here).
- **Clients follow the primary** through multi-host DSNs (core.settings: `target_session_attrs=read-write`, and
  `targetServerType=primary` for the registry's JDBC URL).
- The watchdog restarts a Patroni agent that dies, never a postmaster: Patroni does that.
- The runtime records the mode in member 1's folder (`replicas`), as Kafka records its node count: commands that
  are not told read it. `up --postgres-replicas 0` goes back to one server, from member 1's data (refused if
  member 1 last ran as a standby: its data is older).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from pathlib import Path

import httpx
import yaml

from core.exceptions import ConfigError, ServiceUnhealthy
from core.settings import POSTGRES_REPLICAS_FILE, Settings
from infra.runtime.process import alive
from infra.runtime.services.etcd import ensure_ha_packages
from infra.runtime.services.postgres import SERVER_SETTINGS, Postgres, bootstrap_roles_and_databases, postgres_bindir

log = logging.getLogger(__name__)

SCOPE = "shopstream"
#: Patroni's timing: a lost leader's key expires within TTL_S; the others look every LOOP_WAIT_S.
TTL_S, LOOP_WAIT_S, RETRY_TIMEOUT_S = 10, 2, 4
#: Settings Patroni takes from its store only (the same on every member), with what replication needs.
CLUSTER_PARAMETERS = {
    "max_connections": SERVER_SETTINGS["max_connections"],
    "wal_level": "replica",
    "wal_log_hints": "on",  # pg_rewind, on a cluster made without data checksums
    "hot_standby": "on",
    "max_wal_senders": 10,
    "max_replication_slots": 10,
    "wal_keep_size": "512MB",
}


#: Patroni's cluster-wide settings, kept in etcd.
DYNAMIC_CONFIG = {
    "ttl": TTL_S,
    "loop_wait": LOOP_WAIT_S,
    "retry_timeout": RETRY_TIMEOUT_S,
    "maximum_lag_on_failover": 16 * 1024 * 1024,
    "synchronous_mode": True,
    "synchronous_mode_strict": False,
    # etcd away (its one member restarting) does not demote the leader while it still reaches every member.
    "failsafe_mode": True,
    "postgresql": {"use_pg_rewind": True, "use_slots": True, "parameters": CLUSTER_PARAMETERS},
}


class PatroniMember(Postgres):
    """Member ``member`` (1-based) of the local Patroni cluster: its agent is our process; its postmaster is
    the agent's."""

    quorum = True  # `up` starts every member before it waits for any: a standby waits for the leader

    def __init__(self, settings: Settings, member: int = 1):
        self.member = member
        self.name = "postgres" if member == 1 else f"postgres-{member}"
        super().__init__(settings)

    @property
    def member_name(self) -> str:
        return f"member-{self.member}"

    @property
    def port(self) -> int:
        return self.settings.postgres_member_port(self.member)

    @property
    def rest_port(self) -> int:
        return self.settings.postgres_member_port(self.member, self.settings.patroni_port)

    @property
    def rest_url(self) -> str:
        return f"http://{self.settings.host}:{self.rest_port}"

    @property
    def tls_dir(self) -> Path:
        return self.settings.runtime_dir / "postgres" / "tls"  # member 1's: one certificate names the host

    @property
    def config_file(self) -> Path:
        return self.home / "patroni.yml"

    def port_checks(self) -> list[tuple[int, str]]:
        suffix = "" if self.member == 1 else f" + {100 * (self.member - 1)}"
        checks = [(self.rest_port, "patroni_port" + suffix)]
        postmaster = self.postmaster_pid()
        if postmaster is None or not alive(postmaster):  # a postmaster that outlived its agent is adopted again
            checks.insert(0, (self.port, "postgres_port" + suffix))
        return checks

    def prepare(self) -> None:
        ensure_ha_packages()
        self._prepare_folders()
        if self.member == 1:
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb(postgres_bindir())  # Patroni takes over this folder, as it would an existing one
            (self.home / POSTGRES_REPLICAS_FILE).write_text(str(self.settings.postgres_replica_count))
        self.config_file.unlink(missing_ok=True)
        self.config_file.touch(mode=0o600)  # it holds the superuser's password
        self.config_file.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        self._chown(self.config_file)

    def config(self) -> dict:
        s = self.settings
        password = s.postgres_superuser_password.get_secret_value()
        superuser = {"username": "postgres", "password": password}
        local = {k: v for k, v in SERVER_SETTINGS.items() if k not in CLUSTER_PARAMETERS}
        config = {
            "scope": SCOPE,
            "name": self.member_name,
            "log": {"level": "INFO", "format": "%(asctime)s %(levelname)s: %(message)s"},
            "restapi": {"listen": f"{s.host}:{self.rest_port}", "connect_address": f"{s.host}:{self.rest_port}"},
            "etcd3": {"hosts": [f"{s.host}:{s.etcd_port}"]},
            "postgresql": {
                "listen": f"{s.host}:{self.port}",
                "connect_address": f"{s.host}:{self.port}",
                "data_dir": str(self.data_dir),
                "bin_dir": str(postgres_bindir()),
                "pgpass": str(self.home / "pgpass"),
                # The superuser for all three: the existing cluster has it, with a SCRAM password and pg_hba.conf's
                # loopback lines (replication included, as initdb writes them).
                "authentication": {"superuser": superuser, "replication": superuser, "rewind": superuser},
                "parameters": {
                    **local,
                    "unix_socket_directories": str(self.socket_dir),
                    "ssl": "on",
                    "ssl_cert_file": str(self.tls_dir / "server.crt"),
                    "ssl_key_file": str(self.tls_dir / "server.key"),
                },
                "remove_data_directory_on_rewind_failure": True,
                "remove_data_directory_on_diverged_timelines": True,
            },
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
        }
        if self.member == 1:
            # Only member 1 may initialise the cluster (from its data). A member with no `bootstrap` section never
            # does: it waits for a leader and clones it. Started together, member 2 once won that race, ran initdb,
            # and member 1's data, from another cluster, was shut out.
            config["bootstrap"] = {"dcs": DYNAMIC_CONFIG}
        return config

    def command(self) -> list[str]:
        return [shutil.which("patroni") or "/usr/bin/patroni", str(self.config_file)]

    def healthy(self) -> bool:
        """The agent answers and its postmaster runs (as the leader or a standby)."""
        try:
            return httpx.get(f"{self.rest_url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def after_start(self) -> None:
        """Roles and databases, on the leader once there is one: every member starts read-only, and one of them
        takes the leader key a loop later. A leader that changes meanwhile (or answers late) is asked again until
        start_timeout_s."""
        deadline = time.monotonic() + self.settings.start_timeout_s
        while not self._configure_leader():
            if time.monotonic() > deadline:
                raise ServiceUnhealthy(
                    f"no PostgreSQL member became the leader within {self.settings.start_timeout_s:.0f} s: see "
                    f"{self.process.log_file} and the other members' logs"
                )
            time.sleep(0.5)
        bootstrap_roles_and_databases(self.settings)  # on the leader, through the multi-host DSN

    def _configure_leader(self) -> bool:
        """The cluster's settings as this code has them, through the leader, also for a cluster whose store was set
        up before a change (Patroni reads its `bootstrap.dcs` section only when it initialises the store). False
        while there is no leader to take them."""
        for member in members(self.settings):
            if isinstance(member, PatroniMember) and member.is_leader():
                try:
                    return httpx.patch(f"{member.rest_url}/config", json=DYNAMIC_CONFIG, timeout=10).is_success
                except httpx.HTTPError:
                    return False
        return False

    def is_leader(self) -> bool:
        try:
            return httpx.get(f"{self.rest_url}/primary", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def address(self) -> str:
        return f"{self.settings.host}:{self.port}/{self.settings.postgres_db} (Patroni {self.rest_url})"


def members(settings: Settings) -> list[Postgres]:
    """The local PostgreSQL: one server, or (with replicas) each member of its Patroni cluster in order."""
    count = settings.postgres_replica_count
    if settings.postgres_host is not None:
        return [Postgres(settings)]  # external: nothing of ours starts
    return [Postgres(settings)] if count == 0 else [PatroniMember(settings, m) for m in range(1, count + 2)]


def check_mode(settings: Settings) -> None:
    """A running local PostgreSQL keeps its mode until `down`: asking for another is said with the fix."""
    first = Postgres(settings)
    if settings.postgres_host is not None or first.process.pid() is None:
        return
    try:
        running = int((first.home / POSTGRES_REPLICAS_FILE).read_text())
    except (OSError, ValueError):
        running = 0
    if running != settings.postgres_replica_count:
        raise ConfigError(
            f"the local PostgreSQL runs with {running} replica(s), not {settings.postgres_replica_count}: run "
            f"`shopstream down` first, then `shopstream up --postgres-replicas {settings.postgres_replica_count}`"
        )


def in_sync(settings: Settings) -> bool:
    """One leader, and every other member a standby in sync with it (Patroni's view)."""
    roles = sorted(m["role"] for m in cluster(settings))
    return roles.count("leader") == 1 and len(roles) > 1 and all(r in ("leader", "sync_standby") for r in roles)


def cluster(settings: Settings) -> list[dict]:
    """Each member as Patroni's REST API reports it (name, role, state, port, lag in MB), with its agent's and
    postmaster's pids; empty without replicas. A member that no agent reports is listed as stopped."""
    local = [m for m in members(settings) if isinstance(m, PatroniMember)]
    reported: dict[str, dict] = {}
    for member in local:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            reply = httpx.get(f"{member.rest_url}/cluster", timeout=2)
            if reply.status_code == 200:
                reported = {m["name"]: m for m in reply.json().get("members", [])}
                break
    rows = []
    for member in local:
        seen = reported.get(member.member_name, {})
        lag = seen.get("lag")
        rows.append(
            {
                "name": member.member_name,
                "service": member.name,
                "role": seen.get("role", "-"),
                "state": seen.get("state", "stopped"),
                "agent_pid": member.process.pid(),
                "postmaster_pid": member.postmaster_pid() if seen else None,
                "port": member.port,
                "timeline": seen.get("timeline"),
                "lag_mb": round(lag / 2**20, 1) if isinstance(lag, int) else None,  # Patroni reports bytes
            }
        )
    return rows
