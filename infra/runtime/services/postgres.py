"""PostgreSQL from Debian's server binaries, with its cluster under .runtime/postgres.

The server refuses to run as root, so when we are root it runs as the unprivileged
``postgres`` user (created by Debian's package; we create it if it is missing).
"""

from __future__ import annotations

import datetime as dt
import glob
import ipaddress
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import encrypt_password

from core.database import connect, open_connection
from core.exceptions import ConfigError, DependencyMissing, ServiceUnhealthy
from core.settings import LOCAL_POSTGRES_CA, POSTGRES_REPLICAS_FILE
from infra.runtime.base import Service
from infra.runtime.process import drop_privileges

REGISTRY_DB = "shopstream_registry"
REGISTRY_USER = "shopstream_registry"

# Sized for a 2-core, 24 GB machine that also runs Kafka and Spark.
SERVER_SETTINGS = {
    "shared_buffers": "512MB",
    "max_connections": "200",
    "wal_buffers": "16MB",
    "max_wal_size": "2GB",
    "checkpoint_timeout": "10min",
    "work_mem": "16MB",
    "maintenance_work_mem": "128MB",
    "log_min_messages": "warning",
    "log_line_prefix": "%m [%p] %u@%d ",
    # initdb copies the host's zone; date_trunc and ::date on timestamptz follow it.
    "timezone": "UTC",
    "log_timezone": "UTC",
}


def postgres_bindir() -> Path:
    pg_config = shutil.which("pg_config")
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if candidates:
        return Path(candidates[-1])
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip()
        if (Path(out) / "postgres").exists():
            return Path(out)
    raise DependencyMissing(
        "PostgreSQL server binaries are missing: run `apt-get install postgresql` (or `make setup`)"
    )


class Postgres(Service):
    name = "postgres"
    ports = (("postgres_port", "postgres_port"),)

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "socket"

    def run_as(self) -> tuple[int, int] | None:
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"], check=True
            )
            entry = pwd.getpwnam("postgres")
        return entry.pw_uid, entry.pw_gid

    @property
    def tls_dir(self) -> Path:
        """Outside the data folder: an existing cluster gets TLS from the command line, its folder untouched."""
        return self.home / "tls"

    @property
    def ca_file(self) -> Path:
        return self.settings.runtime_dir / LOCAL_POSTGRES_CA

    def _make_certificate(self) -> None:
        """A CA, and a certificate it signs for the server's address and localhost (verify-full checks both). The
        CA's key is never written: nothing else can be signed with it. Made once; delete tls/ to make new ones."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key_file, cert_file = self.tls_dir / "server.key", self.tls_dir / "server.crt"
        if key_file.exists() and cert_file.exists() and self.ca_file.exists():
            return
        self.tls_dir.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)

        def certificate(subject: str, issuer: str, public_key, signer, *extensions):
            builder = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                .public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=3650))
            )
            for extension, critical in extensions:
                builder = builder.add_extension(extension, critical=critical)
            return builder.sign(signer, hashes.SHA256())

        ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        ca_name = "shopstream local PostgreSQL CA"
        ca = certificate(ca_name, ca_name, ca_key.public_key(), ca_key, (x509.BasicConstraints(True, 0), True))
        names: list[x509.GeneralName] = [x509.DNSName("localhost")]
        try:
            names.insert(0, x509.IPAddress(ipaddress.ip_address(self.settings.host)))
        except ValueError:
            names.insert(0, x509.DNSName(self.settings.host))
        server = certificate(
            self.settings.host,
            ca_name,
            server_key.public_key(),
            ca_key,
            (x509.SubjectAlternativeName(names), False),
            (x509.BasicConstraints(False, None), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        )
        key_file.unlink(missing_ok=True)
        key_file.touch(mode=0o600)  # the server refuses a key that others can read
        key_file.write_bytes(
            server_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self._chown(key_file)
        cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self._chown(self.tls_dir)

    def _chown(self, path: Path) -> None:
        user = self.run_as()
        if user:
            os.chown(path, *user)

    def prepare(self) -> None:
        bindir = postgres_bindir()
        self._prepare_folders()
        if (self.data_dir / "standby.signal").exists():
            raise ConfigError(
                f"{self.data_dir} last ran as a standby of another PostgreSQL member, whose data is newer: start "
                f"the pair (`shopstream up --postgres-replicas 1`), make member 1 the leader (`patronictl -c "
                f"{self.home / 'patroni.yml'} switchover --candidate member-1 --force`), then `shopstream down` "
                "and `shopstream up --postgres-replicas 0`"
            )
        (self.home / POSTGRES_REPLICAS_FILE).unlink(missing_ok=True)  # one server from now on
        if (self.data_dir / "PG_VERSION").exists():
            return
        self._initdb(bindir)

    def _prepare_folders(self) -> None:
        """This member's folders, owned by the server's user and reachable by it, and the TLS certificate."""
        for folder in (self.home, self.socket_dir):
            folder.mkdir(parents=True, exist_ok=True)
            self._chown(folder)
        # The unprivileged server must be able to reach its folder.
        for parent in self.home.parents:
            if parent == Path("/"):
                break
            mode = parent.stat().st_mode
            if not mode & 0o001:
                os.chmod(parent, mode | 0o001)
        self._make_certificate()

    def _initdb(self, bindir: Path) -> None:
        pwfile = self.home / ".pwfile"
        pwfile.write_text(self.settings.postgres_superuser_password.get_secret_value() + "\n")
        self._chown(pwfile)
        os.chmod(pwfile, 0o600)
        try:
            result = subprocess.run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile}",
                ],
                capture_output=True,
                text=True,
                preexec_fn=self._demote(),
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ServiceUnhealthy(f"initdb failed: {result.stderr.strip().splitlines()[-1:]}")

    def _demote(self):
        user = self.run_as()
        return drop_privileges(*user) if user else None

    def command(self) -> list[str]:
        argv = [
            str(postgres_bindir() / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.settings.postgres_port),
            "-c",
            f"listen_addresses={self.settings.host}",
            "-c",
            f"unix_socket_directories={self.socket_dir}",
            # TLS, from the command line: a data folder made before it needs no change. Clients choose with
            # SHOPSTREAM_POSTGRES_SSLMODE (prefer by default: encrypted; verify-full checks the certificate).
            "-c",
            "ssl=on",
            "-c",
            f"ssl_cert_file={self.tls_dir / 'server.crt'}",
            "-c",
            f"ssl_key_file={self.tls_dir / 'server.key'}",
        ]
        for key, value in SERVER_SETTINGS.items():
            argv += ["-c", f"{key}={value}"]
        # A folder that Patroni ran (`up --postgres-replicas`, then back to one server) may name a synchronous
        # standby in its postgresql.conf: alone, every commit would wait for it forever.
        argv += ["-c", "synchronous_standby_names="]
        return argv

    def healthy(self) -> bool:
        try:
            with open_connection(self.settings, "admin", "postgres") as conn:  # a probe: no error to explain
                conn.cursor().execute("SELECT 1")
            conn.close()
            return True
        except psycopg2.Error:
            return False

    def after_start(self) -> None:
        bootstrap_roles_and_databases(self.settings)
        drop_member_slots(self.settings)

    def version(self) -> str:
        out = subprocess.run([str(postgres_bindir() / "postgres"), "--version"], capture_output=True, text=True)
        match = re.search(r"\(PostgreSQL\) (\S+)", out.stdout)
        return match.group(1) if match else "?"

    def address(self) -> str:
        return f"{self.settings.host}:{self.settings.postgres_port}/{self.settings.postgres_db}"


def drop_member_slots(s) -> None:
    """One server again after Patroni ran it (`up --postgres-replicas 0`): the replication slots Patroni kept for
    the other members go, or they would hold WAL back for a standby that no longer runs, until the disk fills."""
    conn = connect(s, "admin", "postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_type = 'physical' AND slot_name LIKE 'member\\_%' AND NOT active"
        )
    conn.close()


def bootstrap_roles_and_databases(s) -> None:
    """Roles and databases: a writer that owns the schema, a read-only reader, the registry's own.

    Idempotent; needs the superuser ("admin") credentials."""
    roles = [
        (s.writer_user, s.writer_password),
        (s.reader_user, s.reader_password),
        (REGISTRY_USER, s.registry_role_password),
    ]
    conn = connect(s, "admin", "postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        for role, password in roles:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            verb = "ALTER" if cur.fetchone() else "CREATE"
            # The SCRAM verifier, computed here (libpq's PQencryptPasswordConn), never the password: the server
            # logs a statement that fails, and this one would then put the password in its log.
            verifier = encrypt_password(password.get_secret_value(), role, conn, "scram-sha-256")
            cur.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(role)), (verifier,))
    conn.close()
    create_database(s, REGISTRY_DB, owner=REGISTRY_USER)
    create_database(s, s.postgres_db)


def create_database(settings, dbname: str, owner: str | None = None) -> None:
    """Create ``dbname`` (owned by the writer unless told) if missing; the reader may read all of it."""
    s = settings
    conn = connect(s, "admin", "postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
        if not cur.fetchone():
            cur.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(dbname), sql.Identifier(owner or s.writer_user)
                )
            )
    conn.close()
    if owner:
        return
    conn = connect(s, "admin", dbname)
    conn.autocommit = True
    with conn.cursor() as cur:
        reader, writer = sql.Identifier(s.reader_user), sql.Identifier(s.writer_user)
        cur.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        cur.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(dbname), reader))
        cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(reader))
        cur.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(reader))
        cur.execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT SELECT ON TABLES TO {}").format(
                writer, reader
            )
        )
    conn.close()


def drop_database(settings, dbname: str) -> None:
    conn = connect(settings, "admin", "postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
    conn.close()
