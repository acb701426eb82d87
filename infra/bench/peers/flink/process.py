"""The Flink SQL peer's own virtual environment, its connector jars, and its child process.

PyFlink 2.2 (about 600 MB with Apache Beam and the Flink distribution it bundles) gets a venv of its own under
``.runtime/peers/flink``, made on first use (about 2 minutes here) and reused after that; the connectors come
from Maven Central (``infra/poms/flink.xml``) into ``.runtime/jvm/flink-peer``. Neither is part of
`make setup`: only `bench … --systems flink` and `make test-peers` need them.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import schemas
from core.settings import Settings
from infra.bench.peers import stock
from infra.orchestration.processes import StreamProcess
from infra.runtime import jvm
from infra.runtime.venv import ensure_venv
from schemas.quality import FUTURE_TOLERANCE_S, QUANTITY_LIMIT
from streaming.options import StreamOptions

REQUIREMENT = "apache-flink==2.2.0"
JARS = jvm.Artifact("flink-peer", "flink.xml", ("dependency:copy@flink",))
SCRIPT = Path(__file__).with_name("job.py")
#: One task slot per core of the reference machine, as many as each topic's partitions (A/B'd against 1 at
#: 10,000/s on 2026-12-05: p95 0.59 s against 0.70 s, 44 against 40 µs of CPU an event).
PARALLELISM = 2
#: Rows the JDBC sink buffers before a flush (besides the interval): enough for a 20,000/s half-second.
FLUSH_ROWS = 10_000


def ensure_env(settings: Settings) -> tuple[Path, list[Path]]:
    """The peer's python and its connector jars, installing either on first use."""
    python = ensure_venv(settings.runtime_dir / "peers" / "flink", REQUIREMENT, "leave 'flink' out of --systems")
    folder = jvm.ensure_fetched(JARS, settings.runtime_dir)
    return python, sorted(folder.glob("*.jar"))


def reader_schema(family: str) -> str:
    """The family's newest schema with event_time a plain long (job.py says why)."""
    schema = json.loads(schemas.latest(family).text)
    for field in schema["fields"]:
        if field["name"] == "event_time":
            field["type"] = "long"
    return json.dumps(schema)


class FlinkProcess(StreamProcess):
    """The Flink SQL peer as a child process (PyFlink's local mini-cluster), writing to ``peer.*``."""

    accounting = "stored"

    def __init__(self, settings: Settings, options: StreamOptions):
        super().__init__(settings, options)
        self.key = f"flink:{uuid.uuid4().hex[:8]}"
        self.log_file = settings.runtime_dir / "logs" / "bench-flink.log"
        self.python, self.jars = ensure_env(settings)
        stock.create_tables(settings)

    def argv(self) -> list[str]:
        return [
            str(self.python),
            str(SCRIPT),
            "--ready-file",
            str(self.ready_file),
            "--checkpoint-dir",
            str(self.options.checkpoint(self.settings) / "flink"),
            "--flush-interval",
            str(self.options.trigger_s),
            "--parallelism",
            str(PARALLELISM),
        ]

    def env(self) -> dict[str, str]:
        s = self.settings
        writer = s.postgres("writer")
        topics = schemas.event_topics(s)
        config = {
            "group": self.key.replace(":", "-"),
            "kafka": s.kafka_bootstrap,
            "registry": s.registry_url,
            "click_topic": topics["clickstream"],
            "order_topic": topics["orders"],
            "click_schema": reader_schema("clickstream"),
            "order_schema": reader_schema("orders"),
            # Text values go to uuid columns as untyped parameters; INSERTs are sent as multi-row statements.
            "jdbc_url": writer.jdbc_url() + "&stringtype=unspecified&reWriteBatchedInserts=true",
            "user": writer.user,
            "password": writer.password.get_secret_value(),
            "flush_rows": FLUSH_ROWS,
            "quantity_limit": QUANTITY_LIMIT,
            "future_s": FUTURE_TOLERANCE_S,
            "jars": [str(j) for j in self.jars],
        }
        java = jvm.find_java(17, "the Flink peer")
        return {
            **super().env(),
            "FLINK_PEER_CONFIG": json.dumps(config),
            "JAVA_HOME": str(Path(java.path).parents[1]),
            "FLINK_LOG_DIR": str(self.log_file.parent),
            "TZ": "UTC",  # Flink hands TIMESTAMP values to the driver in the JVM's zone: UTC, as they are
        }

    def pipeline_key(self) -> str:
        return self.key

    def committed_offsets(self, cur) -> dict[str, dict[int, int]]:
        return stock.stored_offsets(cur)
