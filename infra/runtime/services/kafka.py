"""Apache Kafka 4.x in KRaft mode: one node that is broker and controller."""

from __future__ import annotations

import re
import secrets
import subprocess
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from core import kafka
from core.settings import KafkaConnection, Settings
from infra.runtime import jvm
from infra.runtime.base import Service
from infra.runtime.process import port_is_open
from infra.topics import ensure_topics, load_topic_specs

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
KAFKA_MIN_JAVA = 17
SCRAM_USER = "shopstream"

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
    ports = (("kafka_port", "kafka_port"), ("kafka_controller_port", "kafka_controller_port"),
             ("kafka_secure_port", "kafka_secure_port"))

    @property
    def managed(self) -> bool:
        return self.settings.bootstrap_servers is None

    @property
    def properties_file(self) -> Path:
        return self.home / "server.properties"

    def _java(self) -> str:
        return jvm.find_java(KAFKA_MIN_JAVA, "Kafka").path

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def ca_file(self) -> Path:
        """The PEM that clients of the SASL_SSL listener trust (its self-signed certificate)."""
        return self.tls_dir / "ca.pem"

    def server_properties(self) -> str:
        s = self.settings
        secure = f"SECURE://{s.host}:{s.kafka_secure_port}"
        keystore_password = self._keystore_password()
        return "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{s.host}:{s.kafka_controller_port}",
            f"listeners=PLAINTEXT://{s.host}:{s.kafka_port},CONTROLLER://{s.host}:{s.kafka_controller_port},{secure}",
            f"advertised.listeners=PLAINTEXT://{s.host}:{s.kafka_port},{secure}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SECURE:SASL_SSL",
            # The second listener is what a real cluster looks like: SCRAM over TLS. Its user
            # is created after start (SCRAM_USER); the certificate is made once, in prepare.
            "listener.name.secure.sasl.enabled.mechanisms=SCRAM-SHA-512",
            "listener.name.secure.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            f"listener.name.secure.ssl.keystore.location={self.tls_dir / 'broker.p12'}",
            "listener.name.secure.ssl.keystore.type=PKCS12",
            f"listener.name.secure.ssl.keystore.password={keystore_password}",
            f"listener.name.secure.ssl.key.password={keystore_password}",
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

    def _keystore_password(self) -> str:
        path = self.tls_dir / "keystore.pass"
        if not path.exists():
            self.tls_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_hex(16))
        return path.read_text().strip()

    def _make_certificate(self) -> None:
        """A self-signed certificate for 127.0.0.1 (keytool, from the JDK that runs the broker)."""
        keystore = self.tls_dir / "broker.p12"
        if keystore.exists() and self.ca_file.exists():
            return
        keytool = str(Path(self._java()).resolve().with_name("keytool"))   # beside the JDK's java
        password = self._keystore_password()
        keystore.unlink(missing_ok=True)
        subprocess.run([keytool, "-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048",
                        "-validity", "3650", "-dname", "CN=shopstream-local-kafka",
                        "-ext", f"SAN=IP:{self.settings.host},DNS:localhost", "-keystore", str(keystore),
                        "-storetype", "PKCS12", "-storepass", password, "-keypass", password],
                       capture_output=True, text=True, check=True)
        subprocess.run([keytool, "-exportcert", "-rfc", "-alias", "broker", "-keystore", str(keystore),
                        "-storepass", password, "-file", str(self.ca_file)], capture_output=True, text=True, check=True)

    def prepare(self) -> None:
        classpath = kafka_classpath(self.settings.runtime_dir)
        self._make_certificate()
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
        if self.managed:
            self._ensure_scram_user()

    def _ensure_scram_user(self) -> None:
        """The SASL_SSL listener's user, set through the PLAINTEXT listener (idempotent: an upsert)."""
        from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

        s = self.settings
        local = KafkaConnection(bootstrap_servers=f"{s.host}:{s.kafka_port}")
        admin = AdminClient(local.librdkafka())
        upsert = UserScramCredentialUpsertion(SCRAM_USER, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192),
                                              s.kafka_scram_password.get_secret_value().encode())
        for future in admin.alter_user_scram_credentials([upsert]).values():
            future.result(timeout=30)

    def version(self) -> str:
        if not self.managed:
            return "external"
        for jar in jvm.KAFKA.folder(self.settings.runtime_dir).glob("kafka_2.13-*.jar"):
            return re.sub(r"^kafka_2\.13-|\.jar$", "", jar.name)
        return "not fetched"

    def address(self) -> str:
        return self.settings.kafka_bootstrap


#: The flag each tool takes its client properties file with (the connection's security).
CLIENT_CONFIG_FLAG = {"console-consumer": "--consumer.config", "console-producer": "--producer.config"}


def client_properties_file(settings) -> Path:
    """The connection model as a Java client properties file (mode 0600: it may hold a password)."""
    path = settings.runtime_dir / "run" / "kafka-client.properties"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(settings.kafka.java_properties_text())
    return path


def tool_command(settings, tool: str, args: list[str]) -> list[str]:
    """argv for one of Kafka's own command-line tools, pointed at our cluster with our connection settings
    (bootstrap servers, and the security settings through a generated client properties file)."""
    main_class = TOOLS[tool]
    if tool != "storage" and "--help" not in args and "--version" not in args:
        if not any(a.startswith("--bootstrap-server") for a in args):
            args = ["--bootstrap-server", settings.kafka_bootstrap, *args]
        config_flag = CLIENT_CONFIG_FLAG.get(tool, "--command-config")
        if settings.kafka_security_protocol != "PLAINTEXT" and config_flag not in args:
            args = [*args, config_flag, str(client_properties_file(settings))]
    return [jvm.find_java(KAFKA_MIN_JAVA, "the Kafka tools").path, "-Xmx256m",
            f"-Dlog4j2.configurationFile={CONFIG_DIR / 'tools-log4j2.yaml'}",
            "-cp", kafka_classpath(settings.runtime_dir), main_class, *args]


def over_sasl_ssl(settings: Settings) -> Settings:
    """The same settings, connecting through the local broker's SASL_SSL listener (SCRAM-SHA-512 over TLS)."""
    return Settings(**{**settings.model_dump(), "bootstrap_servers": f"{settings.host}:{settings.kafka_secure_port}",
                       "kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-512",
                       "kafka_sasl_username": SCRAM_USER, "kafka_sasl_password": settings.kafka_scram_password,
                       "kafka_ssl_ca_location": Kafka(settings).ca_file})
