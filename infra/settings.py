"""Typed settings: the one place configuration lives.

Every field reads ``SHOPSTREAM_<FIELD>`` from the environment; the CLI passes flags as
overrides. Library code receives a ``Settings`` instance and never reads the environment.
"""

from __future__ import annotations

from pathlib import Path

from psycopg2.extensions import make_dsn
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPSTREAM_", extra="forbid", validate_default=True)

    runtime_dir: Path = Field(PROJECT_ROOT / ".runtime", description="downloads, data, logs and pid files")
    host: str = Field("127.0.0.1", description="address every local service binds to")

    # Kafka. When bootstrap_servers is set, the platform uses that cluster and starts none.
    kafka_port: int = Field(9092, ge=1, le=65535)
    kafka_controller_port: int = Field(9093, ge=1, le=65535)
    kafka_heap: str = "512m"
    bootstrap_servers: str | None = Field(None, description="an existing Kafka cluster; the local broker is not started")
    topic_prefix: str = Field("shop", pattern=r"^[A-Za-z0-9._-]+$")

    # Schema registry (Apicurio, Confluent-compatible API).
    registry_port: int = Field(8081, ge=1, le=65535)
    registry_management_port: int = Field(8091, ge=1, le=65535, description="Apicurio's health/metrics port")
    registry_heap: str = "384m"
    schema_registry_url: str | None = Field(None, description="an existing Confluent-API registry; the local one is not started")

    # PostgreSQL.
    postgres_host: str | None = Field(None, description="default: host")
    postgres_port: int = Field(5432, ge=1, le=65535)
    postgres_db: str = "shopstream"
    postgres_superuser_password: SecretStr = SecretStr("shopstream-admin")
    writer_user: str = "shopstream_writer"
    writer_password: SecretStr = SecretStr("shopstream-writer")
    reader_user: str = "shopstream_reader"
    reader_password: SecretStr = SecretStr("shopstream-reader")

    # Prometheus.
    prometheus_port: int = Field(9090, ge=1, le=65535)
    producer_metrics_port: int = Field(9464, ge=1, le=65535, description="the producer's /metrics")
    stream_metrics_port: int = Field(9465, ge=1, le=65535, description="the streaming job's /metrics")
    exporter_metrics_port: int = Field(9466, ge=1, le=65535, description="the lag/DB exporter's /metrics")

    # How long `up` waits for each service before giving up.
    start_timeout_s: float = Field(90.0, gt=0)

    @field_validator("runtime_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    # Derived addresses -------------------------------------------------------------
    @property
    def kafka_bootstrap(self) -> str:
        return self.bootstrap_servers or f"{self.host}:{self.kafka_port}"

    @property
    def registry_url(self) -> str:
        return self.schema_registry_url or f"http://{self.host}:{self.registry_port}/apis/ccompat/v7"

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.host}:{self.prometheus_port}"

    def postgres_dsn(self, role: str = "writer", dbname: str | None = None) -> str:
        """libpq DSN for ``role`` in ("writer", "reader", "admin")."""
        users = {
            "writer": (self.writer_user, self.writer_password),
            "reader": (self.reader_user, self.reader_password),
            "admin": ("postgres", self.postgres_superuser_password),
        }
        user, password = users[role]
        # The driver quotes the values (a password may hold spaces or quotes). Every
        # session runs in UTC, whatever zone the server was initialised with, so day
        # boundaries (::date, date_trunc) are the partitions' UTC days.
        return make_dsn(host=self.postgres_host or self.host, port=self.postgres_port,
                        dbname=dbname or self.postgres_db, user=user, password=password.get_secret_value(),
                        connect_timeout=5, options="-c TimeZone=UTC")

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}.{name}"

    def event_topics(self) -> dict[str, str]:
        """{family: topic} for every event family in the schema catalogue."""
        import schemas

        return {family: self.topic(schemas.latest(family).topic_name) for family in schemas.FAMILIES}

    def kafka_client_config(self) -> dict[str, str]:
        """The dotted librdkafka keys shared by every client."""
        return {"bootstrap.servers": self.kafka_bootstrap}


class FaultRatios(BaseModel):
    """Share of events the generator breaks on purpose, per data-quality category."""

    model_config = ConfigDict(extra="forbid")

    schema_: float = Field(0.0, ge=0, le=1, alias="schema")
    data_type: float = Field(0.0, ge=0, le=1)
    completeness: float = Field(0.0, ge=0, le=1)
    business_rules: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _at_most_one(self) -> "FaultRatios":
        if self.total() > 1:
            raise ValueError("the bad-data ratios add up to more than 1")
        return self

    def total(self) -> float:
        return self.schema_ + self.data_type + self.completeness + self.business_rules

    def as_dict(self) -> dict[str, float]:
        return {"schema": self.schema_, "data_type": self.data_type, "completeness": self.completeness,
                "business_rules": self.business_rules}


#: The mix `shopstream run` uses: roughly the seed report's error profile, scaled up so
#: that every rule fires in a short run.
DEFAULT_FAULTS = {"schema": 0.002, "data_type": 0.002, "completeness": 0.003, "business_rules": 0.008}


class ProduceOptions(BaseModel):
    """One run of the generator and producer."""

    model_config = ConfigDict(extra="forbid")

    rate: float = Field(5000.0, ge=0, description="events/s; 0 = as fast as possible")
    duration_s: float | None = Field(None, gt=0)
    count: int | None = Field(None, gt=0)
    seed: int = 42
    run_id: str | None = Field(None, description="mixed into event ids; same seed + run id = same events")
    faults: FaultRatios = FaultRatios()
    duplicate_ratio: float = Field(0.0, ge=0, le=0.5, description="share of events re-sent with the same event_id")
    late_ratio: float = Field(0.02, ge=0, le=1, description="share of events whose event_time lags")
    late_max_s: float = Field(120.0, ge=0, description="how far a late event's event_time lags, at most")
    v2_ratio: float = Field(0.5, ge=0, le=1, description="share of clickstream events written with schema v2")
    burst: bool = Field(False, description="alternate 2 s at 3x the rate with quiet spells")
    sessions: int = Field(500, ge=1, description="concurrent shopping sessions")
    customers: int = Field(5000, ge=1)
    products: int = Field(1000, ge=1)
    cart_rate: float = Field(0.35, ge=0, le=1, description="sessions that add to cart")
    checkout_rate: float = Field(0.6, ge=0, le=1, description="carts that start checkout")
    purchase_rate: float = Field(0.8, ge=0, le=1, description="checkouts that end in an order")
    manifest_path: Path | None = None

    @model_validator(mode="after")
    def _bounded(self) -> "ProduceOptions":
        if self.duration_s is None and self.count is None:
            raise ValueError("give --duration or --count")
        return self


class StreamOptions(BaseModel):
    """One run of the Spark Structured Streaming job."""

    model_config = ConfigDict(extra="forbid")

    master: str = Field("local[*]", description="local[*], local[N] or spark://host:port")
    pipeline: str = Field("shopstream", pattern=r"^[a-z0-9_-]+$", description="name in the ledger and consumer group")
    checkpoint_dir: Path | None = Field(None, description="default: .runtime/checkpoints/<topic prefix>/<pipeline>")
    trigger_s: float = Field(1.0, ge=0, description="micro-batch interval; 0 = next batch as soon as one ends")
    max_offsets_per_trigger: int = Field(200_000, ge=1, description="backpressure: records per micro-batch at most")
    driver_memory: str = "2g"
    shuffle_partitions: int = Field(2, ge=1)
    late_threshold_s: float = Field(5.0, ge=0, description="an event reaching Kafka later than this is counted late")
    dead_letter: bool = True
    stop_when_idle_s: float | None = Field(None, gt=0, description="stop once caught up and idle this long")
    ui: bool = False
    rollup_refresh_s: float = Field(30.0, gt=0, description="how often the hourly/daily rollups are refreshed")
    ready_file: Path | None = Field(None, description="touched once the query runs (for orchestration)")

    def checkpoint(self, settings: "Settings") -> Path:
        return self.checkpoint_dir or settings.runtime_dir / "checkpoints" / settings.topic_prefix / self.pipeline


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
