"""Typed settings: where every service is and how to reach it, and the local runtime's knobs, with the connection
models every client is built from (``KafkaConnection``, ``PostgresConnection``).

Every field reads ``SHOPSTREAM_<FIELD>`` from the environment; the CLI passes flags as
overrides. Library code receives a ``Settings`` instance and never reads the environment.
Each stage's own options live with it (producers/options.py, streaming/options.py, …).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from psycopg2.extensions import make_dsn
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from core.retry import LOCAL_SERVICE

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: A folder of secret files, one per setting, named as its variable (SHOPSTREAM_WRITER_PASSWORD): compose mounts its
#: secrets at /run/secrets and sets this. A variable in the environment wins over a file.
SECRETS_DIR_VARIABLE = "SHOPSTREAM_SECRETS_DIR"
#: In the first local Kafka node's folder: how many nodes its cluster was formatted with.
KAFKA_NODES_FILE = "cluster-nodes"
KAFKA_NODE_PORT_STEP = 100
#: In the first PostgreSQL member's folder: how many replicas `up --postgres-replicas` made it run with (absent: 0).
POSTGRES_REPLICAS_FILE = "replicas"
#: Member N of a local PostgreSQL cluster listens on postgres_port (and patroni_port) + this × (N - 1).
POSTGRES_MEMBER_PORT_STEP = 100
#: Under the runtime folder: the CA that signed the local PostgreSQL's certificate (infra.runtime.services.postgres).
LOCAL_POSTGRES_CA = Path("postgres") / "tls" / "ca.pem"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPSTREAM_", extra="forbid", validate_default=True)

    runtime_dir: Path = Field(PROJECT_ROOT / ".runtime", description="downloads, data, logs and pid files")
    host: str = Field("127.0.0.1", description="address every local service binds to")

    # Kafka. When bootstrap_servers is set, the platform uses that cluster and starts none.
    kafka_port: int = Field(9092, ge=1, le=65535)
    kafka_controller_port: int = Field(9093, ge=1, le=65535)
    kafka_secure_port: int = Field(
        9094, ge=1, le=65535, description="the local broker's SASL_SSL listener (SCRAM-SHA-512 over TLS)"
    )
    kafka_scram_password: SecretStr = Field(
        SecretStr("shopstream-kafka"), description="password of the local broker's SCRAM user `shopstream`"
    )
    kafka_heap: str = "512m"
    kafka_nodes: int | None = Field(
        None,
        ge=1,
        le=5,
        description=(
            "nodes of the local Kafka cluster, each broker and controller (`up --brokers N`); node N listens on the "
            "three Kafka ports + 100 × (N - 1); unset: as many as the local cluster was formatted with, else 1"
        ),
    )
    bootstrap_servers: str | None = Field(
        None, description="an existing Kafka cluster; the local broker is not started"
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="how every Kafka client connects"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism (with SASL_PLAINTEXT or SASL_SSL)"
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password")
    kafka_ssl_ca_location: Path | None = Field(
        None,
        description="PEM file of the CA that signed the brokers' certificates "
        "(with SSL or SASL_SSL; default: the system's)",
    )
    topic_prefix: str = Field("shop", pattern=r"^[A-Za-z0-9._-]+$")

    # Schema registry (Apicurio, Confluent-compatible API).
    registry_port: int = Field(8081, ge=1, le=65535)
    registry_management_port: int = Field(8091, ge=1, le=65535, description="Apicurio's health/metrics port")
    registry_heap: str = "384m"
    schema_registry_url: str | None = Field(
        None, description="an existing Confluent-API registry; the local one is not started"
    )

    # PostgreSQL.
    postgres_host: str | None = Field(
        None,
        pattern=r"^[^,:\s]+(:\d{1,5})?(,[^,:\s]+(:\d{1,5})?)*$",
        description="the server, or several as HOST[:PORT],… (libpq tries each in turn; with more than one, "
        "clients connect to whichever accepts writes); default: host",
    )
    postgres_port: int = Field(5432, ge=1, le=65535)
    postgres_db: str = "shopstream"
    postgres_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = Field(
        "prefer",
        description="libpq's sslmode for every PostgreSQL client: prefer (the default) encrypts when the server "
        "offers TLS, as the local one does; verify-full also checks its certificate and name",
    )
    postgres_ssl_ca_location: Path | None = Field(
        None,
        description="PEM file of the CA that signed the server's certificate (with verify-ca or verify-full; "
        "default for the local server: the CA it was made with, <runtime_dir>/postgres/tls/ca.pem)",
    )
    postgres_superuser_password: SecretStr = SecretStr("shopstream-admin")
    postgres_replicas: int | None = Field(
        None,
        ge=0,
        le=2,
        description=(
            "standbys of the local PostgreSQL (`up --postgres-replicas N`): with 1 or more, Patroni runs each member "
            "and fails over to a standby, etcd its store; member N listens on postgres_port + 100 × (N - 1); unset: "
            "as the local server last ran, else 0"
        ),
    )
    patroni_port: int = Field(
        8008, ge=1, le=65535, description="member 1's Patroni REST API (member N: + 100 × (N - 1)), loopback"
    )
    etcd_port: int = Field(2379, ge=1, le=65535, description="the local etcd's client port (Patroni's store)")
    etcd_peer_port: int = Field(2380, ge=1, le=65535, description="the local etcd's peer port")
    writer_user: str = "shopstream_writer"
    writer_password: SecretStr = SecretStr("shopstream-writer")
    reader_user: str = "shopstream_reader"
    reader_password: SecretStr = SecretStr("shopstream-reader")
    registry_password: SecretStr | None = Field(
        None,
        description="the schema registry's own role's password "
        "(default: the superuser's, as before this setting existed)",
    )

    # Data tiering (`shopstream archive`, which the database upkeep runs once a day).
    archive_dir: Path | None = Field(
        None, description="where days that left PostgreSQL go, as Parquet (default: <runtime_dir>/archive)"
    )
    hot_days: int = Field(
        7,
        ge=3,
        description="days of facts kept in PostgreSQL; older day partitions are archived, "
        "verified, then dropped (at least 3: the upkeep keeps 2 days back)",
    )
    trim_days: int = Field(
        30,
        ge=1,
        description="days kept of the quarantine, the ledger and the per-minute KPIs; "
        "older rows are archived, verified, then deleted (each pipeline's newest ledger row stays)",
    )

    # Logs under <runtime_dir>/logs rotate (copy, then truncate) past this size; the watchdog looks each minute.
    log_max_mb: int = Field(50, ge=1, description="a log under .runtime/logs rotates past this many MB")
    log_keep: int = Field(3, ge=1, description="rotated copies kept of each log (<name>.log.1 … .N)")

    # Prometheus.
    prometheus_port: int = Field(9090, ge=1, le=65535)
    prometheus_url: str | None = Field(
        None,
        description="an existing Prometheus that `report` queries (compose: http://prometheus:9090); default: "
        "the local one",
    )
    producer_metrics_port: int = Field(9464, ge=0, le=65535, description="the producer's /metrics; 0 = none")
    stream_metrics_port: int = Field(9465, ge=0, le=65535, description="the streaming job's /metrics; 0 = none")
    stream_standby_metrics_port: int = Field(
        9467,
        ge=0,
        le=65535,
        description="a standby driver's /metrics (`stream --standby`); once it takes over it serves the job's too",
    )
    metrics_host: str | None = Field(
        None,
        description="the address the producer's, the job's and the exporter's /metrics listen on (default: host, "
        "loopback; compose sets 0.0.0.0 so that Prometheus reaches the containers)",
    )
    exporter_metrics_port: int = Field(9466, ge=1, le=65535, description="the lag/DB exporter's /metrics")

    # Alertmanager: where Prometheus's alerts go.
    alertmanager_port: int = Field(9095, ge=1, le=65535)
    alert_webhook_url: str | None = Field(
        None, description="a webhook that receives every alert; none = alerts stay in Alertmanager's UI"
    )

    # pgAdmin 4, optional (`up --with pgadmin`): its own venv under .runtime/pgadmin, on 127.0.0.1 only.
    pgadmin_port: int = Field(5050, ge=1, le=65535)
    pgadmin_email: str = Field("admin@shopstream.example", description="pgAdmin's login (its first user)")
    pgadmin_password: SecretStr = Field(SecretStr("shopstream-pgadmin"), description="pgAdmin's login password")

    # A Spark standalone cluster, optional (`up --spark-workers N`): a master and N workers on loopback.
    spark_master_port: int = Field(7077, ge=1, le=65535)
    spark_master_ui_port: int = Field(8080, ge=1, le=65535, description="the master's web UI (loopback)")
    spark_worker_ui_port: int = Field(8181, ge=1, le=65535, description="worker N's web UI is this port + N - 1")
    spark_worker_cores: int = Field(1, ge=1, description="cores each local worker offers")
    spark_worker_memory: str = Field("1g", pattern=r"^\d+[mg]$", description="memory each local worker offers")

    # The watchdog `up` starts: it restarts a local service that died.
    watchdog: bool = Field(True, description="restart local services that die (on by default)")
    spark_class_archive: bool = Field(
        True,
        description="the stream driver's JVM maps Spark's classes from an archive made once under "
        "<runtime_dir>/jvm/spark-cds (Java 25: an AOT cache; a session ready ~4.5 s sooner)",
    )
    watchdog_interval_s: float = Field(1.0, gt=0, description="how often the watchdog looks")
    watchdog_max_backoff_s: float = Field(
        LOCAL_SERVICE.max_s,
        gt=0,
        description="the longest wait between two tries to start "
        "a service that will not start (backoff doubles from 1 s up to it)",
    )

    # How long `up` waits for each service before giving up.
    start_timeout_s: float = Field(90.0, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        folder = os.environ.get(SECRETS_DIR_VARIABLE)
        secrets = SecretsSettingsSource(settings_cls, secrets_dir=folder) if folder else file_secret_settings
        return init_settings, env_settings, dotenv_settings, secrets

    @field_validator("runtime_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _sasl_complete(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_"):
            missing = [
                name
                for name in ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"{self.kafka_security_protocol} needs {', '.join(missing)}")
        return self

    @property
    def metrics_bind(self) -> str:
        return self.metrics_host or self.host

    @property
    def archive_path(self) -> Path:
        return (self.archive_dir or self.runtime_dir / "archive").expanduser().resolve()

    # Derived addresses -------------------------------------------------------------
    @property
    def kafka_node_count(self) -> int:
        """The local Kafka cluster's size: the setting, else what `up --brokers` formatted (its record in the first
        node's folder), else 1."""
        if self.kafka_nodes is not None:
            return self.kafka_nodes
        try:
            return int((self.runtime_dir / "kafka" / KAFKA_NODES_FILE).read_text())
        except (OSError, ValueError):
            return 1

    @property
    def postgres_replica_count(self) -> int:
        """Standbys of the local PostgreSQL: the setting, else what the local server last ran with (its record in
        member 1's folder), else 0."""
        if self.postgres_replicas is not None:
            return self.postgres_replicas
        try:
            return int((self.runtime_dir / "postgres" / POSTGRES_REPLICAS_FILE).read_text())
        except (OSError, ValueError):
            return 0

    def postgres_member_port(self, member: int, port: int | None = None) -> int:
        """Member ``member``'s (1-based) copy of a PostgreSQL port (postgres_port unless told, or patroni_port)."""
        return (self.postgres_port if port is None else port) + POSTGRES_MEMBER_PORT_STEP * (member - 1)

    def kafka_node_port(self, node: int, port: int) -> int:
        """Node ``node``'s (1-based) copy of one of the Kafka ports (kafka_port, _controller_port, _secure_port)."""
        return port + KAFKA_NODE_PORT_STEP * (node - 1)

    @property
    def kafka_bootstrap(self) -> str:
        """Every local node, so a client starting while one is down still finds the cluster."""
        return self.bootstrap_servers or ",".join(
            f"{self.host}:{self.kafka_node_port(n, self.kafka_port)}" for n in range(1, self.kafka_node_count + 1)
        )

    @property
    def registry_url(self) -> str:
        return self.schema_registry_url or f"http://{self.host}:{self.registry_port}/apis/ccompat/v7"

    @property
    def prometheus_endpoint(self) -> str:
        return (self.prometheus_url or f"http://{self.host}:{self.prometheus_port}").rstrip("/")

    @property
    def alertmanager_url(self) -> str:
        return f"http://{self.host}:{self.alertmanager_port}"

    @property
    def registry_role_password(self) -> SecretStr:
        return self.registry_password or self.postgres_superuser_password

    @property
    def spark_master_url(self) -> str:
        return f"spark://{self.host}:{self.spark_master_port}"

    @property
    def pgadmin_url(self) -> str:
        return f"http://{self.host}:{self.pgadmin_port}"

    def postgres(self, role: str = "writer", dbname: str | None = None) -> PostgresConnection:
        """The connection model of ``role`` in ("writer", "reader", "admin"): every PostgreSQL client is built
        from it (psycopg2 through core.database, the registry's JDBC URL, pgAdmin, the peers)."""
        users = {
            "writer": (self.writer_user, self.writer_password),
            "reader": (self.reader_user, self.reader_password),
            "admin": ("postgres", self.postgres_superuser_password),
        }
        user, password = users[role]
        hosts, ports = [], []
        local = ",".join(
            f"{self.host}:{self.postgres_member_port(m)}" for m in range(1, self.postgres_replica_count + 2)
        )
        for entry in (self.postgres_host or local).split(","):
            host, _, port = entry.partition(":")
            hosts.append(host)
            ports.append(int(port) if port else self.postgres_port)
        return PostgresConnection(
            hosts=tuple(hosts),
            ports=tuple(ports),
            dbname=dbname or self.postgres_db,
            user=user,
            password=password,
            sslmode=self.postgres_sslmode,
            ssl_ca_location=self.postgres_ca,
        )

    @property
    def postgres_ca(self) -> Path | None:
        """The CA clients verify the server with: the setting, else (verifying the local server) the local CA."""
        if self.postgres_ssl_ca_location is not None:
            return self.postgres_ssl_ca_location
        if self.postgres_host is None and self.postgres_sslmode in ("verify-ca", "verify-full"):
            return self.runtime_dir / LOCAL_POSTGRES_CA
        return None

    def postgres_dsn(self, role: str = "writer", dbname: str | None = None) -> str:
        """libpq DSN for ``role`` in ("writer", "reader", "admin")."""
        return self.postgres(role, dbname).dsn()

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}.{name}"

    @property
    def kafka(self) -> KafkaConnection:
        """The one Kafka connection model every client is built from."""
        password = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
        return KafkaConnection(
            bootstrap_servers=self.kafka_bootstrap,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=password,
            ssl_ca_location=self.kafka_ssl_ca_location,
        )


class KafkaConnection(BaseModel):
    """Where Kafka is and how to authenticate, in the three dialects our clients speak:
    librdkafka's dotted keys, Spark's ``kafka.``-prefixed source options, and the Java
    client properties that Kafka's own tools read (``--command-config``)."""

    model_config = ConfigDict(frozen=True)

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = Field(None, repr=False)
    ssl_ca_location: Path | None = None

    def librdkafka(self) -> dict[str, str]:
        config = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.security_protocol}
        if self.sasl_mechanism:
            config.update(
                {
                    "sasl.mechanism": self.sasl_mechanism,
                    "sasl.username": self.sasl_username or "",
                    "sasl.password": self.sasl_password or "",
                }
            )
        if self.ssl_ca_location:
            config["ssl.ca.location"] = str(self.ssl_ca_location)
        return config

    def java(self) -> dict[str, str]:
        """Java client properties (Kafka's tools; Spark's source with a ``kafka.`` prefix)."""
        props = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.security_protocol}
        if self.sasl_mechanism:
            module = (
                "org.apache.kafka.common.security.plain.PlainLoginModule"
                if self.sasl_mechanism == "PLAIN"
                else "org.apache.kafka.common.security.scram.ScramLoginModule"
            )
            props["sasl.mechanism"] = self.sasl_mechanism
            props["sasl.jaas.config"] = (
                f'{module} required username="{_jaas_escape(self.sasl_username or "")}" '
                f'password="{_jaas_escape(self.sasl_password or "")}";'
            )
        if self.ssl_ca_location:
            props.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": str(self.ssl_ca_location)})
        return props

    def spark_options(self) -> dict[str, str]:
        return {f"kafka.{key}": value for key, value in self.java().items()}

    def java_properties_text(self) -> str:
        """The properties file format (keys and values escaped as java.util.Properties reads them)."""

        def esc(text: str) -> str:
            return text.replace("\\", "\\\\").replace("\n", "\\n").replace(":", "\\:").replace("=", "\\=")

        return "".join(f"{key}={esc(value)}\n" for key, value in self.java().items())


def _jaas_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class PostgresConnection(BaseModel):
    """Where PostgreSQL is and how to authenticate, as libpq (psycopg2) and JDBC (the registry) take it.
    Several hosts make a failover list: clients connect to whichever accepts writes."""

    model_config = ConfigDict(frozen=True)

    hosts: tuple[str, ...]
    ports: tuple[int, ...]  # one per host
    dbname: str
    user: str
    password: SecretStr
    sslmode: str = "prefer"
    ssl_ca_location: Path | None = None

    @property
    def address(self) -> str:
        """host:port[,host:port…], for messages."""
        return ",".join(f"{h}:{p}" for h, p in zip(self.hosts, self.ports, strict=True))

    def dsn(self) -> str:
        # The driver quotes the values (a password may hold spaces or quotes). Every session runs in UTC, whatever
        # zone the server was initialised with, so day boundaries (::date, date_trunc) are the partitions' UTC days.
        # A network partition drops packets without a reset: TCP keepalives (an idle connection) and
        # tcp_user_timeout (a request left unacknowledged) turn it into an error within about 10 s, which the sink
        # retries, instead of a session that hangs for the kernel's 15 minutes.
        extra: dict[str, Any] = {}
        if len(self.hosts) > 1:
            extra["target_session_attrs"] = "read-write"
        if self.ssl_ca_location:
            extra["sslrootcert"] = str(self.ssl_ca_location)
        return make_dsn(
            None,
            host=",".join(self.hosts),
            port=",".join(map(str, self.ports)),
            dbname=self.dbname,
            user=self.user,
            password=self.password.get_secret_value(),
            sslmode=self.sslmode,
            connect_timeout=5,
            options="-c TimeZone=UTC",
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
            tcp_user_timeout=10000,
            **extra,
        )

    def jdbc_url(self) -> str:
        """The JDBC URL (the password travels apart, never in the URL)."""
        params = {"sslmode": self.sslmode}
        if len(self.hosts) > 1:
            params["targetServerType"] = "primary"
        if self.ssl_ca_location:
            params["sslrootcert"] = str(self.ssl_ca_location)
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"jdbc:postgresql://{self.address}/{self.dbname}?{query}"


def flag(name: str) -> dict[str, JsonValue]:
    """``json_schema_extra`` for a field whose command-line flag is not its name (see infra.cli.options)."""
    return {"flag": name}


HIDDEN: dict[str, JsonValue] = {"hidden": True}  # ``json_schema_extra`` of a field the orchestration sets, not a person


def comma_separated(value):
    """A list flag given as one string: "1000,5000" -> ["1000", "5000"] (the field's type converts)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def json_variable(group: str) -> str:
    """The variable that carries a whole model to a child process."""
    return f"SHOPSTREAM_{group.upper()}_OPTIONS_JSON"


def settings_env(settings: Settings) -> dict[str, str]:
    """The SHOPSTREAM_* environment that reproduces ``settings`` in a child process."""
    env = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"SHOPSTREAM_{name.upper()}"] = str(value)
    return env
