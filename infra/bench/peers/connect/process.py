"""The Kafka Connect peer: what a team would configure instead of writing a job.

Kafka Connect in standalone mode, from the same Kafka release as the broker (``infra/poms/connect.xml``), with two
plugins (``infra/poms/connect-plugins.xml``): Debezium's JDBC sink connector and Apicurio Registry's Avro
converter, set to read the Confluent framing our producer writes (a 4-byte id, the registry's content id). One
connector per topic, since a JDBC sink writes one table per topic; each upserts into the tables' primary key
(idempotent, at-least-once), through Kafka's own transforms:

- ``InsertField``: the Kafka topic, partition, offset and timestamp as columns (our tables' lineage);
- Debezium's ``HeaderToValue`` (Kafka's own ``HeaderFrom`` goes the other way): the ``produced_at`` header into
  ``produced_at_us``;
- ``TimestampConverter``: ``event_time`` (Avro timestamp-micros, a long to Connect) into a timestamp;
- for orders, ``ReplaceField`` drops ``line_items``: a JDBC sink cannot write an array of records, so Connect
  stores no order lines, and an order's ``line_count`` stays null. Connect validates nothing.

The worker's REST listener is on loopback; ready is both connectors' tasks RUNNING there. Offsets are committed
(the sink's ``flush``) every ``offset.flush.interval.ms``: with Debezium's sink, each ``put`` writes its batch
at once, so the interval bounds re-delivery after a crash, not latency. The database password reaches the worker
in its environment (Kafka's ``EnvVarConfigProvider``), never in a file or on the command line.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import httpx

import schemas
from core.settings import Settings
from infra.bench.peers import stock
from infra.orchestration.processes import StreamProcess
from infra.runtime import jvm
from streaming.options import StreamOptions

WORKER = jvm.Artifact("connect-peer", "connect.xml", ("dependency:copy-dependencies", "-DincludeScope=runtime"))
PLUGINS = jvm.Artifact(
    "connect-peer-plugins",
    "connect-plugins.xml",
    ("dependency:copy-dependencies@apicurio", "dependency:unpack@debezium"),
)
LOG_CONFIG = Path(__file__).with_name("log4j2.properties")
REST_PORT = 8083  # Connect's default, on loopback
PASSWORD_VARIABLE = "CONNECT_PEER_PG_PASSWORD"
#: Records per consumer poll, and so per ``put`` and per JDBC batch: Connect's default of 500 would make 20
#: statements a second at 10,000/s per connector.
BATCH = 5000


def ensure_env(settings: Settings) -> tuple[Path, Path]:
    """The worker's jar folder and the plugin path, fetching either on first use."""
    return jvm.ensure_fetched(WORKER, settings.runtime_dir), jvm.ensure_fetched(PLUGINS, settings.runtime_dir)


def properties(values: dict[str, object]) -> str:
    return "".join(f"{k}={v}\n" for k, v in values.items())


class ConnectProcess(StreamProcess):
    """A Kafka Connect standalone worker with one JDBC sink connector per event topic, writing to ``peer.*``."""

    accounting = "stored"

    def __init__(self, settings: Settings, options: StreamOptions):
        super().__init__(settings, options)
        self.key = f"connect-{uuid.uuid4().hex[:8]}"
        self.log_file = settings.runtime_dir / "logs" / "bench-connect.log"
        self.worker, self.plugins = ensure_env(settings)
        self.folder = options.checkpoint(settings) / "connect"
        stock.create_tables(settings)

    def _write_config(self) -> list[Path]:
        s = self.settings
        self.folder.mkdir(parents=True, exist_ok=True)
        writer = s.postgres("writer")
        registry = s.registry_url.split("/apis/")[0] + "/apis/registry/v2"
        worker = {
            "bootstrap.servers": s.kafka_bootstrap,
            "key.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
            "value.converter": "io.apicurio.registry.utils.converter.AvroConverter",
            "value.converter.apicurio.registry.url": registry,
            "value.converter.apicurio.registry.as-confluent": "true",
            "value.converter.apicurio.registry.use-id": "contentId",
            "offset.storage.file.filename": self.folder / "offsets",
            "offset.flush.interval.ms": int(self.options.trigger_s * 1000),
            "plugin.path": self.plugins,
            "listeners": f"http://{s.host}:{REST_PORT}",
            "consumer.max.poll.records": BATCH,
            "consumer.fetch.min.bytes": 1,
            "config.providers": "env",
            "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
        }
        lineage = {
            "transforms.lineage.type": "org.apache.kafka.connect.transforms.InsertField$Value",
            "transforms.lineage.topic.field": "kafka_topic",
            "transforms.lineage.partition.field": "kafka_partition",
            "transforms.lineage.offset.field": "kafka_offset",
            "transforms.lineage.timestamp.field": "kafka_time",
            "transforms.produced.type": "io.debezium.transforms.HeaderToValue",
            "transforms.produced.headers": "produced_at",
            "transforms.produced.fields": "produced_at_us",
            "transforms.produced.operation": "copy",
            "transforms.eventTime.type": "org.apache.kafka.connect.transforms.TimestampConverter$Value",
            "transforms.eventTime.field": "event_time",
            "transforms.eventTime.target.type": "Timestamp",
            "transforms.eventTime.unix.precision": "microseconds",
        }
        topics = schemas.event_topics(s)
        files = [self.folder / "worker.properties"]
        files[0].write_text(properties(worker))
        for family, table in (("clickstream", "clickstream_events"), ("orders", "orders")):
            connector = {
                "name": f"{self.key}-{family}",
                "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
                "tasks.max": 1,
                "topics": topics[family],
                "connection.url": writer.jdbc_url() + "&stringtype=unspecified&reWriteBatchedInserts=true",
                "connection.username": writer.user,
                "connection.password": f"${{env:{PASSWORD_VARIABLE}}}",
                "insert.mode": "upsert",
                "primary.key.mode": "record_value",
                "primary.key.fields": "event_time,event_id",
                "schema.evolution": "none",
                "collection.name.format": f"{stock.SCHEMA}.{table}",
                "use.time.zone": "UTC",
                "batch.size": BATCH,
                "transforms": "lineage,produced,eventTime" + (",lines" if family == "orders" else ""),
                **lineage,
            }
            if family == "orders":
                connector["transforms.lines.type"] = "org.apache.kafka.connect.transforms.ReplaceField$Value"
                connector["transforms.lines.exclude"] = "line_items"
            files.append(self.folder / f"{family}.properties")
            files[-1].write_text(properties(connector))
        return files

    def argv(self) -> list[str]:
        java = jvm.find_java(17, "the Kafka Connect peer")
        return [
            java.path,
            "-Xmx512m",
            "-XX:+UseSerialGC",
            f"-Dlog4j2.configurationFile={LOG_CONFIG}",
            "-cp",
            f"{self.worker}/*",
            "org.apache.kafka.connect.cli.ConnectStandalone",
            *map(str, self._write_config()),
        ]

    def env(self) -> dict[str, str]:
        return {**super().env(), PASSWORD_VARIABLE: self.settings.postgres("writer").password.get_secret_value()}

    def start(self, timeout: float = 180.0) -> None:
        """The worker, then ready once both connectors' tasks run (a thread touches the ready file)."""
        done = threading.Event()
        threading.Thread(target=self._mark_ready, args=(done,), daemon=True, name="connect-ready").start()
        try:
            super().start(timeout)
        finally:
            done.set()

    def _mark_ready(self, done: threading.Event) -> None:
        names = [f"{self.key}-{family}" for family in ("clickstream", "orders")]
        while not done.is_set():
            try:
                states = [
                    httpx.get(f"http://{self.settings.host}:{REST_PORT}/connectors/{n}/status", timeout=2).json()
                    for n in names
                ]
                if all(st.get("tasks") and all(t["state"] == "RUNNING" for t in st["tasks"]) for st in states):
                    self.ready_file.touch()
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.2)

    def alive(self) -> bool:
        """The worker runs and no task has failed (a failed sink task stays failed until restarted by hand)."""
        if not super().alive():
            return False
        for family in ("clickstream", "orders"):
            try:
                status = httpx.get(
                    f"http://{self.settings.host}:{REST_PORT}/connectors/{self.key}-{family}/status", timeout=2
                ).json()
            except (httpx.HTTPError, ValueError):
                continue  # starting, or busy: not a verdict
            if any(task.get("state") == "FAILED" for task in status.get("tasks", [])):
                return False
        return True

    def pipeline_key(self) -> str:
        return self.key

    def committed_offsets(self, cur) -> dict[str, dict[int, int]]:
        return stock.stored_offsets(cur)
