"""SASL/SCRAM over TLS, end to end: the producer, the stream job (librdkafka and Spark's
Java client) and one of Kafka's own tools, all through the local broker's SASL_SSL
listener, configured only by the settings' one Kafka connection model."""

from __future__ import annotations

import os
import subprocess
import sys

import schemas
from core.settings import ProduceOptions, Settings, settings_env
from infra.runtime.services.kafka import SCRAM_USER, Kafka
from tests.fixtures.pipeline import produce_then_stream


def over_sasl_ssl(settings: Settings) -> Settings:
    return Settings(**{**settings.model_dump(), "bootstrap_servers": f"{settings.host}:{settings.kafka_secure_port}",
                       "kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-512",
                       "kafka_sasl_username": SCRAM_USER, "kafka_sasl_password": settings.kafka_scram_password,
                       "kafka_ssl_ca_location": Kafka(settings).ca_file})


def test_producer_stream_job_and_a_kafka_tool_run_over_sasl_ssl(pipeline_env):
    plain, options = pipeline_env
    secure = over_sasl_ssl(plain)
    run = produce_then_stream(secure, options, ProduceOptions(rate=0, count=3000, run_id="sasl"))
    assert (run.summary["lost"], run.summary["duplicates_in_db"]) == (0, 0)
    assert run.summary["stored"] + run.summary["quarantined"] == run.manifest.unique_events
    assert run.summary["quality"] == run.manifest.to_dict()["quality"]

    # Kafka's own tool, given the connection through a generated --command-config file.
    tool = subprocess.run([sys.executable, "-m", "infra", "kafka", "consumer-groups", "--describe",
                           "--group", options.pipeline], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **settings_env(secure)})
    assert tool.returncode == 0, tool.stderr
    for topic in schemas.event_topics(secure).values():
        assert topic in tool.stdout
