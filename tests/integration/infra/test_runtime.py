"""The local runtime against the real services."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg2
import pytest
from confluent_kafka.admin import NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from core import kafka
from core.database import connect
from core.exceptions import PortInUse
from core.settings import Settings
from infra.runtime import stack
from infra.runtime.process import port_is_free
from infra.runtime.services.registry import Registry
from infra.runtime.topics import load_topic_specs
from tests.fixtures.processes import processes_mentioning
from tests.fixtures.waiting import wait_for
from tests.fixtures.workers import shifted_ports


def test_a_message_round_trips_through_kafka(running_stack, unique_name):
    s = running_stack
    topic = f"{unique_name}.roundtrip"
    admin = kafka.admin(s)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(timeout=30)
    producer = kafka.producer(s, {"acks": "all", "enable.idempotence": True})
    producer.produce(topic, key=b"k", value=b"hello shop")
    assert producer.flush(30) == 0
    consumer = kafka.consumer(s, unique_name, {"auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 30
        message = None
        while message is None and time.monotonic() < deadline:
            message = consumer.poll(1)
        assert message is not None and message.error() is None
        assert message.value() == b"hello shop"
    finally:
        consumer.close()


AVRO = json.dumps({"type": "record", "name": "Ping", "namespace": "test", "fields": [{"name": "id", "type": "string"}]})


def test_a_schema_id_survives_a_registry_restart(running_stack, unique_name):
    s = running_stack
    if s.schema_registry_url:
        pytest.skip("an external registry is not ours to restart")
    client = SchemaRegistryClient({"url": s.registry_url, "timeout": 10})
    schema_id = client.register_schema(f"{unique_name}-value", Schema(AVRO, "AVRO"))
    assert json.loads(client.get_schema(schema_id).schema_str)["name"] == "Ping"

    registry = Registry(s)
    assert registry.stop()
    assert not registry.healthy()
    assert registry.start()

    fresh = SchemaRegistryClient({"url": s.registry_url, "timeout": 10})
    assert json.loads(fresh.get_schema(schema_id).schema_str)["name"] == "Ping"
    assert fresh.get_latest_version(f"{unique_name}-value").schema_id == schema_id


def test_the_writer_writes_and_the_reader_only_reads(running_stack, unique_name):
    s = running_stack
    with connect(s, "writer") as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {unique_name} (id int PRIMARY KEY, note text)")
        cur.execute(f"INSERT INTO {unique_name} VALUES (1, 'written')")
    with connect(s, "reader") as conn, conn.cursor() as cur:
        cur.execute(f"SELECT note FROM {unique_name} WHERE id = 1")
        assert cur.fetchone() == ("written",)
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute(f"INSERT INTO {unique_name} VALUES (2, 'forbidden')")
    with connect(s, "writer") as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE {unique_name}")


def test_prometheus_scrapes_itself(running_stack):
    s = running_stack

    def prometheus_target_up() -> bool:
        targets = httpx.get(f"{s.prometheus_endpoint}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        return any(t["labels"]["job"] == "prometheus" and t["health"] == "up" for t in targets)

    wait_for(prometheus_target_up, 30, "Prometheus's own target to be up")


def test_kafka_topics_tool_lists_the_spec_topics(running_stack):
    s = running_stack
    out = subprocess.run(
        [sys.executable, "-m", "infra", "kafka", "topics", "--list"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    for spec in load_topic_specs():
        assert s.topic(spec.name) in out


def test_every_kafka_tool_names_a_class_the_kafka_jars_hold(running_stack):
    """`shopstream kafka <tool>` runs the tool's main class: each must exist in the Kafka release we fetch."""
    import zipfile

    from infra.runtime import jvm
    from infra.runtime.services.kafka import TOOLS

    classes = {
        name
        for jar in jvm.KAFKA.folder(running_stack.runtime_dir).glob("*.jar")
        for name in zipfile.ZipFile(jar).namelist()
    }
    for tool, main_class in TOOLS.items():
        assert main_class.replace(".", "/") + ".class" in classes, f"kafka {tool}: no {main_class}"


def test_status_reports_every_service_healthy(running_stack):
    names = {st.name: st for st in stack.status(running_stack)}
    assert set(names) == {"postgres", "kafka", "registry", "alertmanager", "prometheus"}
    assert all(st.healthy for st in names.values()), names


# A second, private stack on other ports: for start/stop behaviour that must not
# disturb the shared one.
def _private_settings(tmp_path: Path, shared: Settings, offset: int) -> Settings:
    runtime = tmp_path / "rt"
    runtime.mkdir()
    (runtime / "jvm").symlink_to(shared.runtime_dir / "jvm")  # reuse the fetched jars
    return Settings(runtime_dir=runtime, start_timeout_s=120, **shifted_ports(shared, offset))


def _processes_mentioning(text: str) -> list[str]:
    return [cmdline[:120] for cmdline in processes_mentioning(text).values()]


@pytest.fixture
def private_tmp():
    # Under /tmp with a world-traversable path, so the unprivileged postgres can use it.
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="shopstream-it-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_up_twice_is_a_no_op_and_down_leaves_nothing(running_stack, private_tmp):
    private = _private_settings(private_tmp, running_stack, offset=200)
    assert stack.up(private) == ["postgres", "kafka", "registry", "alertmanager", "prometheus"]
    assert stack.up(private) == []
    assert len(_processes_mentioning(str(private.runtime_dir))) >= 5
    assert set(stack.down(private)) == {"postgres", "kafka", "registry", "alertmanager", "prometheus"}
    assert _processes_mentioning(str(private.runtime_dir)) == []
    assert stack.down(private) == []


def test_a_taken_port_fails_clearly_and_leaves_nothing_started(running_stack, private_tmp):
    private = _private_settings(private_tmp, running_stack, offset=300)
    with socket.socket() as squatter:
        squatter.bind((private.host, private.kafka_port))
        squatter.listen()
        with pytest.raises(PortInUse, match=f"port {private.kafka_port}.*SHOPSTREAM_KAFKA_PORT"):
            stack.up(private)
    assert _processes_mentioning(str(private.runtime_dir)) == []
    assert port_is_free(private.host, private.postgres_port)


def test_a_sandboxs_acls_are_granted_and_revoked_and_the_shared_one_stays(running_stack):
    """What the local broker holds after a sandbox's grant and its revoke (the authorizer's own answer)."""
    from confluent_kafka.admin import AclBindingFilter, AclOperation, AclPermissionType
    from confluent_kafka.admin import ResourcePatternType as Pattern
    from confluent_kafka.admin import ResourceType as Kind

    from infra.runtime.services.kafka import (
        SHARED_GROUP_PREFIX,
        grant_pipeline_access,
        local_admin,
        revoke_pipeline_access,
    )

    admin = local_admin(running_stack)
    everything = AclBindingFilter(Kind.ANY, None, Pattern.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY)

    def names() -> set[str]:
        return {b.name for b in admin.describe_acls(everything).result(timeout=30)}

    prefix = f"acl{os.getpid()}"
    grant_pipeline_access(running_stack, prefix, pipeline=prefix)
    assert {f"{prefix}.", prefix, SHARED_GROUP_PREFIX} <= names()
    revoke_pipeline_access(running_stack, prefix, pipeline=prefix)
    left = names()
    assert f"{prefix}." not in left and prefix not in left
    assert SHARED_GROUP_PREFIX in left and f"{running_stack.topic_prefix}." in left
