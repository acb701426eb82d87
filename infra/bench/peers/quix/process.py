"""The Quix Streams peer's own virtual environment and its child process.

quixstreams 3.28.1 requires confluent-kafka < 2.13 and we pin 2.16.1, so the peer gets
a venv of its own under ``.runtime/peers/quix``, made on first use (about 15 s with a
warm pip cache) and reused after that.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from core.settings import Settings
from infra.orchestration.processes import StreamProcess
from infra.runtime.venv import ensure_venv
from streaming.options import StreamOptions

REQUIREMENT = "quixstreams[avro,postgresql]==3.28.1"
SCRIPT = Path(__file__).with_name("peer.py")


def venv_dir(settings: Settings) -> Path:
    return settings.runtime_dir / "peers" / "quix"


def ensure_env(settings: Settings) -> Path:
    """The peer's python, installing ``REQUIREMENT`` into its venv if it is not there yet."""
    return ensure_venv(venv_dir(settings), REQUIREMENT, "leave 'quix' out of --systems")


class QuixProcess(StreamProcess):
    """The Quix Streams peer as a child process, in its own venv."""

    def __init__(self, settings: Settings, options: StreamOptions, topics: dict[str, str]):
        super().__init__(settings, options)
        self.key = f"quix:{uuid.uuid4().hex[:8]}"
        self.topics = topics  # {"clickstream": topic, "orders": topic}
        self.log_file = settings.runtime_dir / "logs" / "bench-quix.log"
        self.python = ensure_env(settings)

    def argv(self) -> list[str]:
        return [
            str(self.python),
            str(SCRIPT),
            "--pipeline",
            self.key,
            "--click-topic",
            self.topics["clickstream"],
            "--order-topic",
            self.topics["orders"],
            "--ready-file",
            str(self.ready_file),
            "--state-dir",
            str(self.options.checkpoint(self.settings) / "quix-state"),
            "--commit-interval",
            str(self.options.trigger_s),
        ]

    def env(self) -> dict[str, str]:
        s = self.settings
        writer = s.postgres("writer")
        postgres = {
            "host": ",".join(writer.hosts),
            "port": ",".join(map(str, writer.ports)),
            "dbname": writer.dbname,
            "user": writer.user,
            "password": writer.password.get_secret_value(),
            "sslmode": writer.sslmode,
        }
        from streaming import sql
        from streaming.transform import CLICK_FIELDS, ORDER_FIELDS, ORDER_TAIL_FIELDS

        # The peer imports nothing of ours (another venv): the columns and the ledger
        # statement reach it from here, so there is one definition of each.
        columns = {"clickstream": CLICK_FIELDS, "orders": ORDER_FIELDS + ORDER_TAIL_FIELDS}
        return {
            **super().env(),
            "QUIX_PEER_KAFKA": s.kafka_bootstrap,
            "QUIX_PEER_REGISTRY": s.registry_url,
            "QUIX_PEER_POSTGRES": json.dumps(postgres),
            "QUIX_PEER_COLUMNS": json.dumps(columns),
            "QUIX_PEER_LEDGER_SQL": sql.INSERT_LEDGER,
        }

    def pipeline_key(self) -> str:
        return self.key
