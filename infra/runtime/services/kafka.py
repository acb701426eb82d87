"""Apache Kafka 4.x in KRaft mode: one node that is broker and controller."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from confluent_kafka import KafkaException

from core import kafka
from infra.runtime import jvm
from infra.runtime.base import Service
from infra.runtime.process import port_is_open
from infra.topics import ensure_topics, load_topic_specs

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
KAFKA_MIN_JAVA = 17

# The tools users know from the Kafka tarball's bin/*.sh, by their short names.
TOOLS = {
    "topics": "org.apache.kafka.tools.TopicCommand",
    "console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "configs": "org.apache.kafka.admin.ConfigCommand",
    "storage": "kafka.tools.StorageTool",
}


def kafka_classpath(runtime_dir: Path) -> str:
    return str(jvm.ensure_fetched(jvm.KAFKA, runtime_dir) / "*")


class Kafka(Service):
    name = "kafka"
    ports = (("kafka_port", "kafka_port"), ("kafka_controller_port", "kafka_controller_port"))

    @property
    def managed(self) -> bool:
        return self.settings.bootstrap_servers is None

    @property
    def properties_file(self) -> Path:
        return self.home / "server.properties"

    def _java(self) -> str:
        return jvm.find_java(KAFKA_MIN_JAVA, "Kafka").path

    def server_properties(self) -> str:
        s = self.settings
        return "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{s.host}:{s.kafka_controller_port}",
            f"listeners=PLAINTEXT://{s.host}:{s.kafka_port},CONTROLLER://{s.host}:{s.kafka_controller_port}",
            f"advertised.listeners=PLAINTEXT://{s.host}:{s.kafka_port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={self.home / 'data'}",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "",
        ])

    def prepare(self) -> None:
        classpath = kafka_classpath(self.settings.runtime_dir)
        self.properties_file.write_text(self.server_properties())
        if (self.home / "data" / "meta.properties").exists():
            return
        cluster_id = subprocess.run(
            [self._java(), "-cp", classpath, TOOLS["storage"], "random-uuid"],
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]
        subprocess.run(
            [self._java(), "-cp", classpath, f"-Dlog4j2.configurationFile={CONFIG_DIR / 'tools-log4j2.yaml'}",
             TOOLS["storage"], "format", "-t", cluster_id, "-c", str(self.properties_file)],
            capture_output=True, text=True, check=True,
        )

    def command(self) -> list[str]:
        heap = self.settings.kafka_heap
        return [
            self._java(), f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={CONFIG_DIR / 'kafka-log4j2.yaml'}",
            "-cp", kafka_classpath(self.settings.runtime_dir), "kafka.Kafka", str(self.properties_file),
        ]

    def healthy(self) -> bool:
        host, _, port = self.settings.kafka_bootstrap.split(",")[0].rpartition(":")
        if not port_is_open(host, int(port)):
            return False  # spares librdkafka's connection-refused noise while the broker boots
        admin = kafka.admin(self.settings, {"socket.timeout.ms": 2000})
        try:
            return len(admin.list_topics(timeout=2).brokers) > 0
        except KafkaException:
            return False

    def after_start(self) -> None:
        ensure_topics(self.settings, self.settings.topic_prefix, load_topic_specs())

    def version(self) -> str:
        if not self.managed:
            return "external"
        for jar in jvm.KAFKA.folder(self.settings.runtime_dir).glob("kafka_2.13-*.jar"):
            return re.sub(r"^kafka_2\.13-|\.jar$", "", jar.name)
        return "not fetched"

    def address(self) -> str:
        return self.settings.kafka_bootstrap


def tool_command(settings, tool: str, args: list[str]) -> list[str]:
    """argv for one of Kafka's own command-line tools, pointed at our broker by default."""
    main_class = TOOLS[tool]
    if tool != "storage" and not any(a.startswith("--bootstrap-server") for a in args) \
            and "--help" not in args and "--version" not in args:
        args = ["--bootstrap-server", settings.kafka_bootstrap, *args]
    return [jvm.find_java(KAFKA_MIN_JAVA, "the Kafka tools").path, "-Xmx256m",
            f"-Dlog4j2.configurationFile={CONFIG_DIR / 'tools-log4j2.yaml'}",
            "-cp", kafka_classpath(settings.runtime_dir), main_class, *args]
