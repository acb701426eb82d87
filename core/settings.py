"""Typed settings: the one place configuration lives.

Every field reads ``SHOPSTREAM_<FIELD>`` from the environment; the CLI passes flags as
overrides. Library code receives a ``Settings`` instance and never reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from psycopg2.extensions import make_dsn
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.retry import LOCAL_SERVICE

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: In the first local Kafka node's folder: how many nodes its cluster was formatted with.
KAFKA_NODES_FILE = "cluster-nodes"
KAFKA_NODE_PORT_STEP = 100


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
        "prefer", description="libpq's sslmode for every PostgreSQL client (verify-full checks the server's name)"
    )
    postgres_ssl_ca_location: Path | None = Field(
        None, description="PEM file of the CA that signed the server's certificate (with verify-ca or verify-full)"
    )
    postgres_superuser_password: SecretStr = SecretStr("shopstream-admin")
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
    producer_metrics_port: int = Field(9464, ge=0, le=65535, description="the producer's /metrics; 0 = none")
    stream_metrics_port: int = Field(9465, ge=0, le=65535, description="the streaming job's /metrics; 0 = none")
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
    watchdog_interval_s: float = Field(1.0, gt=0, description="how often the watchdog looks")
    watchdog_max_backoff_s: float = Field(
        LOCAL_SERVICE.max_s,
        gt=0,
        description="the longest wait between two tries to start "
        "a service that will not start (backoff doubles from 1 s up to it)",
    )

    # How long `up` waits for each service before giving up.
    start_timeout_s: float = Field(90.0, gt=0)

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
    def prometheus_url(self) -> str:
        return f"http://{self.host}:{self.prometheus_port}"

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
        for entry in (self.postgres_host or self.host).split(","):
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
            ssl_ca_location=self.postgres_ssl_ca_location,
        )

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


class FaultRatios(BaseModel):
    """Share of events the generator breaks on purpose, per data-quality category."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: float = Field(
        0.002,
        ge=0,
        le=1,
        alias="schema",
        json_schema_extra=flag("schema-ratio"),
        description="share that is unframed, of an unknown schema, or undecodable",
    )
    data_type: float = Field(
        0.002,
        ge=0,
        le=1,
        json_schema_extra=flag("data-type-ratio"),
        description="share with a malformed id, timestamp, currency, amount or field",
    )
    completeness: float = Field(
        0.003,
        ge=0,
        le=1,
        json_schema_extra=flag("completeness-ratio"),
        description="share missing a required field or the order lines",
    )
    business_rules: float = Field(
        0.008,
        ge=0,
        le=1,
        json_schema_extra=flag("business-rules-ratio"),
        description="share breaking a business rule (price, quantity, future time, totals)",
    )

    @model_validator(mode="after")
    def _at_most_one(self) -> FaultRatios:
        if self.total() > 1:
            raise ValueError("the bad-data ratios add up to more than 1")
        return self

    def total(self) -> float:
        return self.schema_ + self.data_type + self.completeness + self.business_rules

    def as_dict(self) -> dict[str, float]:
        return {
            "schema": self.schema_,
            "data_type": self.data_type,
            "completeness": self.completeness,
            "business_rules": self.business_rules,
        }


#: No broken events at all (benchmarks, and tests that want only valid ones).
NO_FAULTS = FaultRatios(schema_=0, data_type=0, completeness=0, business_rules=0)
#: The default bad-data mix: roughly the seed report's error profile, scaled up so that
#: every rule fires in a short run.
DEFAULT_FAULTS = FaultRatios().as_dict()

#: The least lateness the generator injects (s). A stored event whose event_time lags its own send
#: (the produced_at header) by this much was made late on purpose: the reports show that lag as its
#: own figure and leave such events out of stage latency, which it would otherwise swamp.
LATE_MIN_S = 1.0


def comma_separated(value):
    """A list flag given as one string: "1000,5000" -> ["1000", "5000"] (the field's type converts)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def load_step(value):
    """One step of a step load, "RATE:SECONDS" -> (rate, seconds): "20000:60" holds 20,000 events/s for 60 s."""
    if isinstance(value, str):
        rate, colon, seconds = value.partition(":")
        if not colon:
            raise ValueError("a step is RATE:SECONDS, e.g. 20000:60")
        return rate, seconds
    return value


LoadStep = Annotated[tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]], BeforeValidator(load_step)]


class ProduceOptions(BaseModel):
    """One run of the generator and producer (`shopstream produce`, and `run`'s producing)."""

    model_config = ConfigDict(extra="forbid")

    rate: float = Field(5000.0, ge=0, description="events per second; 0 = as fast as possible")
    duration_s: float | None = Field(None, gt=0, description="seconds to produce for")
    count: int | None = Field(None, gt=0, description="number of events to produce")
    seed: int = Field(42, description="random seed: the same seed and run id give the same events")
    run_id: str | None = Field(None, description="mixed into event ids (default: random)")
    faults: FaultRatios = FaultRatios()
    duplicate_ratio: float = Field(0.01, ge=0, le=0.5, description="share of events re-sent with the same event_id")
    late_ratio: float = Field(
        0.02, ge=0, le=1, description="share of events whose event_time lags (late, out of order)"
    )
    late_max_s: float = Field(120.0, ge=0, description="how far a late event's event_time lags, at most (s)")
    v2_ratio: float = Field(0.5, ge=0, le=1, description="share of clickstream events written with schema v2")
    burst: bool = Field(False, description="2 s at 3x the rate, then 4 s quiet (same average)")
    steps: Annotated[list[LoadStep], BeforeValidator(comma_separated)] = Field(
        [],
        description="a step load in place of --rate and --burst: RATE:SECONDS,… (e.g. 5000:60,20000:60,5000:60); "
        "--duration defaults to their sum",
    )
    sessions: int = Field(500, ge=1, description="concurrent shopping sessions")
    customers: int = Field(5000, ge=1, description="customers in the generator's pool")
    products: int = Field(1000, ge=1, description="products in the generator's pool")
    cart_rate: float = Field(0.35, ge=0, le=1, description="share of sessions that add to the cart")
    checkout_rate: float = Field(0.6, ge=0, le=1, description="share of carts that start checkout")
    purchase_rate: float = Field(0.8, ge=0, le=1, description="share of checkouts that end in an order")
    manifest_path: Path | None = Field(
        None,
        description="write what was acknowledged, by quality outcome, as JSON "
        "(kept as the run's journal while it runs)",
    )
    resume: Path | None = Field(
        None,
        description="finish a killed run from its --manifest file, sending only what "
        "is not in Kafka yet (its other options come from that file)",
    )

    @model_validator(mode="after")
    def _bounded(self) -> ProduceOptions:
        if self.steps and self.duration_s is None:
            self.duration_s = sum(seconds for _, seconds in self.steps)
        if self.duration_s is None and self.count is None and self.resume is None:
            raise ValueError("give --duration or --count (or --resume MANIFEST)")
        return self


class StreamOptions(BaseModel):
    """One run of the Spark Structured Streaming job (`shopstream stream`, and `run`'s job)."""

    model_config = ConfigDict(extra="forbid")

    master: str = Field("local[*]", description="Spark master: local[*], local[N] or spark://host:port")
    pipeline: str = Field(
        "shopstream", pattern=r"^[a-z0-9_-]+$", description="pipeline name (ledger, consumer group, checkpoint)"
    )
    checkpoint_dir: Path | None = Field(
        None, description="checkpoint folder (default .runtime/checkpoints/PREFIX/PIPELINE)"
    )
    trigger_s: float = Field(0.5, ge=0, description="micro-batch interval in seconds; 0 = back to back")
    max_offsets_per_trigger: int = Field(200_000, ge=1, description="backpressure: records per micro-batch at most")
    driver_memory: str = Field("2g", pattern=r"^[0-9]+[kmgt]$", description="Spark driver heap, e.g. 2g")
    executor_memory: str = Field(
        "768m",
        pattern=r"^\d+[mg]$",
        description="each executor's memory on a cluster master (spark://…); a local worker offers 1g",
    )
    shuffle_partitions: int = Field(2, ge=1, description="Spark SQL shuffle partitions")
    late_threshold_s: float = Field(5.0, ge=0, description="an event reaching Kafka later than this (s) counts as late")
    dead_letter: bool = Field(True, description="also publish quarantined records to the dead-letter topic")
    stop_when_idle_s: float | None = Field(None, gt=0, description="stop once caught up and idle this many seconds")
    ui: bool = Field(False, description="serve the Spark UI")
    rollup_refresh_s: float = Field(30.0, gt=0, description="how often the hourly/daily rollups are refreshed (s)")
    sink_retry_s: float = Field(
        300.0,
        gt=0,
        description="how long the sink retries a micro-batch through a "
        "transient fault (database or dead-letter topic away) "
        "before the job fails",
    )
    stall_after_s: float = Field(
        10.0,
        gt=0,
        description="report the job stalled (shopstream_stream_stalled) when "
        "input waits in Kafka and nothing committed for this long",
    )
    supervise: bool = Field(
        True,
        description="restart the job's process when it dies (SIGKILL, OOM, a crash), from its checkpoint, with backoff",
    )
    quantity_limit: int | None = Field(
        None,
        ge=1,
        description=(
            "business rule: units of one product in one line, at most (default: the data contract's, 100); relax it, "
            "then `shopstream dead-letter redrive --rule quantity_over_limit` stores what it quarantined"
        ),
    )
    warmup: bool = Field(
        True,
        description=(
            "run the stream's own plan over 12,000 generated events on private topics before the query starts "
            "(about 12 s), so that the first real batches run compiled; off: a quicker start, colder first batches"
        ),
    )
    from_group_offsets: bool = Field(
        False,
        description=(
            "start from the consumer group's offsets (reset them first: `shopstream kafka consumer-groups "
            "--reset-offsets … --execute`), on a new checkpoint; the old one is kept beside it"
        ),
    )
    ready_file: Path | None = Field(None, description="touched once the query runs", json_schema_extra=HIDDEN)
    # `shopstream replay --to`: read only below these offsets, then stop; and the live pipeline whose resume point
    # tells a replayed batch from a new one. Set by that command, not flags.
    end_offsets: dict[str, dict[str, int]] | None = Field(
        None, description="stop at these offsets", json_schema_extra=HIDDEN
    )
    replay_of: str | None = Field(None, description="the pipeline this one replays", json_schema_extra=HIDDEN)

    def checkpoint(self, settings: Settings) -> Path:
        return self.checkpoint_dir or settings.runtime_dir / "checkpoints" / settings.topic_prefix / self.pipeline


class RunOptions(BaseModel):
    """`shopstream run`'s own options; it also takes the produce and stream options."""

    model_config = ConfigDict(extra="forbid")

    summary_json: Path | None = Field(None, description="also write the summary as JSON here")


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


class ReportOptions(BaseModel):
    """`shopstream report`."""

    model_config = ConfigDict(extra="forbid")

    minutes: float = Field(60.0, gt=0, description="report on what the sink committed in the last N minutes")
    png: Path | None = Field(None, description="where to write the charts (default .runtime/report.png)")
    html: Path | None = Field(
        None,
        description="where to write the self-contained HTML report: the tables and the "
        "charts (default .runtime/report.html)",
    )
    manifest_path: Path | None = Field(
        None, description="a producer manifest (`produce --manifest`), for the produced series and the run's parameters"
    )
    query_runs: int = Field(20, ge=1, le=1000, description="repetitions of each timed database query")


class ExporterOptions(BaseModel):
    """`shopstream exporter` (its port is the exporter_metrics_port setting)."""

    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(
        "shopstream", pattern=r"^[a-z0-9_-]+$", description="pipeline whose ledger the lag is measured against"
    )
    interval_s: float = Field(5.0, gt=0, description="seconds between measurements")


class MaintainOptions(BaseModel):
    """`shopstream maintain`: the database's upkeep."""

    model_config = ConfigDict(extra="forbid")

    interval_s: float | None = Field(None, gt=0, description="repeat every this many seconds (default: once)")
