"""Apache Kafka 4.x in KRaft mode: one node that is broker and controller, or a cluster of such nodes
(`up --brokers 3`: one quorum, every node a voter; node N in .runtime/kafka-N, on the Kafka ports + 100 × (N - 1))."""

from __future__ import annotations

import logging
import re
import secrets
import subprocess
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from core import kafka
from core.exceptions import ConfigError, ServiceUnhealthy
from core.settings import KAFKA_NODES_FILE, KafkaConnection, Settings
from infra.runtime import jvm
from infra.runtime.base import Service
from infra.runtime.process import port_is_open
from infra.runtime.topics import ensure_topics, load_topic_specs

log = logging.getLogger(__name__)

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
    "configs": "kafka.admin.ConfigCommand",
    "storage": "kafka.tools.StorageTool",
    "acls": "org.apache.kafka.tools.AclCommand",
}


def kafka_classpath(runtime_dir: Path) -> str:
    return str(jvm.ensure_fetched(jvm.KAFKA, runtime_dir) / "*")


class Kafka(Service):
    """Node ``node`` (1-based) of the local cluster of ``settings.kafka_node_count`` nodes. Node 1 keeps the name
    and folder a one-node install has always had (`kafka`), so an existing install is its node 1."""

    name = "kafka"
    quorum = True

    def __init__(self, settings: Settings, node: int = 1):
        self.node = node
        self.name = "kafka" if node == 1 else f"kafka-{node}"
        super().__init__(settings)

    @property
    def nodes(self) -> int:
        return self.settings.kafka_node_count

    def port(self, field: str) -> int:
        """This node's copy of the Kafka port ``field``."""
        return self.settings.kafka_node_port(self.node, getattr(self.settings, field))

    def port_checks(self) -> list[tuple[int, str]]:
        suffix = "" if self.node == 1 else f" + {100 * (self.node - 1)}"
        return [(self.port(f), f + suffix) for f in ("kafka_port", "kafka_controller_port", "kafka_secure_port")]

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
        """Node 1's: every node serves the same certificate, so one CA file serves clients of them all."""
        return self.settings.runtime_dir / "kafka" / "tls"

    @property
    def ca_file(self) -> Path:
        """The PEM that clients of the SASL_SSL listener trust (its self-signed certificate)."""
        return self.tls_dir / "ca.pem"

    def server_properties(self) -> str:
        s = self.settings
        host, plain, controller = s.host, self.port("kafka_port"), self.port("kafka_controller_port")
        secure = f"SECURE://{host}:{self.port('kafka_secure_port')}"
        keystore_password = self._keystore_password()
        voters = ",".join(
            f"{n}@{host}:{s.kafka_node_port(n, s.kafka_controller_port)}" for n in range(1, self.nodes + 1)
        )
        # Kafka's internal topics are replicated like the event topics (infra/runtime/topics.yaml): 3 copies, 2 in sync.
        replicas, in_sync = min(3, self.nodes), min(2, self.nodes)
        return "\n".join(
            [
                "process.roles=broker,controller",
                f"node.id={self.node}",
                f"controller.quorum.voters={voters}",
                f"listeners=PLAINTEXT://{host}:{plain},CONTROLLER://{host}:{controller},{secure}",
                f"advertised.listeners=PLAINTEXT://{host}:{plain},{secure}",
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
                # Kafka's authorizer: the SASL user may do only what ACLs grant it (grant_pipeline_access). It is
                # broker-wide, so the loopback PLAINTEXT and CONTROLLER listeners' principal (ANONYMOUS) is a super
                # user: the brokers' own traffic, the controller, and the tools and services on this host use it.
                "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "super.users=User:ANONYMOUS",
                f"log.dirs={self.home / 'data'}",
                "num.partitions=1",
                f"offsets.topic.replication.factor={replicas}",
                "offsets.topic.num.partitions=4",
                f"transaction.state.log.replication.factor={replicas}",
                f"transaction.state.log.min.isr={in_sync}",
                f"share.coordinator.state.topic.replication.factor={replicas}",
                f"share.coordinator.state.topic.min.isr={in_sync}",
                # A replica that was not in sync never becomes leader: acknowledged writes are never given up.
                "unclean.leader.election.enable=false",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                "",
            ]
        )

    @property
    def keystore_password_file(self) -> Path:
        """The keystore's generated password, in a file of mode 0600 (made on first use)."""
        path = self.tls_dir / "keystore.pass"
        if not path.exists():
            self.tls_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_hex(16))
        return path

    def _keystore_password(self) -> str:
        return self.keystore_password_file.read_text().strip()

    def _make_certificate(self) -> None:
        """A self-signed certificate for 127.0.0.1 (keytool, from the JDK that runs the broker)."""
        keystore = self.tls_dir / "broker.p12"
        if keystore.exists() and self.ca_file.exists():
            return
        keytool = str(Path(self._java()).resolve().with_name("keytool"))  # beside the JDK's java
        password_file = self.keystore_password_file
        keystore.unlink(missing_ok=True)
        subprocess.run(
            [
                keytool,
                "-genkeypair",
                "-alias",
                "broker",
                "-keyalg",
                "RSA",
                "-keysize",
                "2048",
                "-validity",
                "3650",
                "-dname",
                "CN=shopstream-local-kafka",
                "-ext",
                f"SAN=IP:{self.settings.host},DNS:localhost",
                "-keystore",
                str(keystore),
                "-storetype",
                "PKCS12",
                # From the password's file (mode 0600), not the command line, which `ps` shows every local user.
                "-storepass:file",
                str(password_file),
                "-keypass:file",
                str(password_file),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        subprocess.run(
            [
                keytool,
                "-exportcert",
                "-rfc",
                "-alias",
                "broker",
                "-keystore",
                str(keystore),
                "-storepass:file",
                str(password_file),
                "-file",
                str(self.ca_file),
            ],
            capture_output=True,
            text=True,
            check=True,
        )

    def prepare(self) -> None:
        classpath = kafka_classpath(self.settings.runtime_dir)
        self._make_certificate()
        self.properties_file.write_text(self.server_properties())
        if (self.home / "data" / "meta.properties").exists():
            return
        first = Kafka(self.settings, 1)
        cluster_id = first.cluster_id() if self.node > 1 else None
        if cluster_id is None:
            cluster_id = (
                subprocess.run(
                    [self._java(), "-cp", classpath, TOOLS["storage"], "random-uuid"],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
        if self.node == 1:
            (self.home / KAFKA_NODES_FILE).write_text(str(self.nodes))
        subprocess.run(
            [
                self._java(),
                "-cp",
                classpath,
                f"-Dlog4j2.configurationFile={CONFIG_DIR / 'tools-log4j2.yaml'}",
                TOOLS["storage"],
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.properties_file),
            ],
            capture_output=True,
            text=True,
            check=True,
        )

    def cluster_id(self) -> str | None:
        """The id this node's storage was formatted with (None before its first start)."""
        try:
            text = (self.home / "data" / "meta.properties").read_text()
        except OSError:
            return None
        found = re.search(r"^cluster\.id=(.+)$", text, re.M)
        return found.group(1).strip() if found else None

    def command(self) -> list[str]:
        heap = self.settings.kafka_heap
        return [
            self._java(),
            f"-Xmx{heap}",
            f"-Xms{heap}",
            # The serial collector: no concurrent GC threads competing for 2 cores, and a young collection of a
            # 512 MB heap takes milliseconds. Against G1 (MaxGCPauseMillis=20), A/B'd alternating on 2026-12-05
            # (bench-results/experiments/2026-12-05-kafka-serial-gc.md): 3 nodes at 5,000/s used 0.81x the CPU
            # (47-49 % of a core against 59-61 %), one broker at 10,000/s 0.86x (16-20 % against 20-21 %).
            "-XX:+UseSerialGC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={CONFIG_DIR / 'kafka-log4j2.yaml'}",
            "-cp",
            kafka_classpath(self.settings.runtime_dir),
            "kafka.Kafka",
            str(self.properties_file),
        ]

    def healthy(self) -> bool:
        """Answering, and (for a local node) a live member of the cluster's metadata."""
        if self.managed and not port_is_open(self.settings.host, self.port("kafka_port")):
            return False  # spares librdkafka's connection-refused noise while the broker boots
        admin = kafka.admin(self.settings, {"socket.timeout.ms": 2000})
        try:
            brokers = admin.list_topics(timeout=2).brokers
        except KafkaException:
            return False
        return self.node in brokers if self.managed else len(brokers) > 0

    def after_start(self) -> None:
        ensure_topics(self.settings, self.settings.topic_prefix, load_topic_specs())
        if self.managed:
            self._ensure_scram_user()
            grant_pipeline_access(self.settings, self.settings.topic_prefix)

    def _ensure_scram_user(self) -> None:
        """The SASL_SSL listener's user, set through the PLAINTEXT listener (idempotent: an upsert)."""
        from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

        s = self.settings
        admin = local_admin(s)
        upsert = UserScramCredentialUpsertion(
            SCRAM_USER,
            ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192),
            s.kafka_scram_password.get_secret_value().encode(),
        )
        for future in admin.alter_user_scram_credentials([upsert]).values():
            future.result(timeout=30)

    def version(self) -> str:
        if not self.managed:
            return "external"
        for jar in jvm.KAFKA.folder(self.settings.runtime_dir).glob("kafka_2.13-*.jar"):
            return re.sub(r"^kafka_2\.13-|\.jar$", "", jar.name)
        return "not fetched"

    def address(self) -> str:
        if not self.managed:
            return self.settings.kafka_bootstrap
        return f"{self.settings.host}:{self.port('kafka_port')}"


#: The consumer-group prefix of the probe and the offset reader (``shopstream-…``), which every pipeline uses:
#: granted with any pipeline, never revoked with one.
SHARED_GROUP_PREFIX = "shopstream"


def _allow(kind: ResourceType, name: str, pattern: ResourcePatternType) -> AclBinding:
    return AclBinding(kind, name, pattern, f"User:{SCRAM_USER}", "*", AclOperation.ALL, AclPermissionType.ALLOW)


def pipeline_acls(prefix: str, pipeline: str | None = None) -> list[AclBinding]:
    """What the SASL user may do as ``prefix``'s pipeline: everything on the topics under ``prefix`` (its event
    topics, the dead-letter topic, the job's warm-up topics) and on its own consumer groups: Spark's (under the
    same prefix, see streaming.job.spark_group_prefix) and the pipeline's."""
    bindings = [
        _allow(ResourceType.TOPIC, f"{prefix}.", ResourcePatternType.PREFIXED),
        _allow(ResourceType.GROUP, f"{prefix}.", ResourcePatternType.PREFIXED),
    ]
    if pipeline:
        bindings.append(_allow(ResourceType.GROUP, pipeline, ResourcePatternType.LITERAL))
    return bindings


def shared_acls() -> list[AclBinding]:
    return [_allow(ResourceType.GROUP, SHARED_GROUP_PREFIX, ResourcePatternType.PREFIXED)]


def as_filter(binding: AclBinding) -> AclBindingFilter:
    """The filter that matches exactly ``binding`` (delete_acls takes filters)."""
    b = binding
    return AclBindingFilter(
        b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type
    )


def local_admin(settings: Settings) -> AdminClient:
    """An admin client on the local cluster's PLAINTEXT listeners (the super user)."""
    local = KafkaConnection(
        bootstrap_servers=",".join(f"{settings.host}:{k.port('kafka_port')}" for k in nodes(settings))
    )
    return AdminClient(local.librdkafka())


def grant_pipeline_access(settings: Settings, prefix: str, pipeline: str | None = None, timeout: float = 30.0) -> None:
    """Grant the local broker's SASL user ``prefix``'s ACLs and the shared ones (idempotent: granted again, an ACL
    is unchanged), retried while the broker's answer is retriable. Nothing for an external cluster, whose ACLs
    are its own operators'."""
    if settings.bootstrap_servers is not None:
        return
    admin = local_admin(settings)  # held until the futures resolve: a dropped client destroys its handle
    try:
        for attempt in kafka.retrying(timeout):
            with attempt:
                for future in admin.create_acls([*pipeline_acls(prefix, pipeline), *shared_acls()]).values():
                    future.result(timeout=timeout)
    except (KafkaException, TimeoutError) as exc:
        raise ServiceUnhealthy(f"could not grant user {SCRAM_USER} the ACLs of {prefix}.*: {exc}") from exc


def revoke_pipeline_access(settings: Settings, prefix: str, pipeline: str | None = None, timeout: float = 30.0) -> None:
    """Take back what grant_pipeline_access gave ``prefix`` alone (a sandbox's, when it is removed); the shared
    ACLs stay. A clean-up, like delete_topics: a failure is logged, not raised (an ACL left on a prefix whose
    topics are gone grants nothing that exists)."""
    if settings.bootstrap_servers is not None:
        return
    admin = local_admin(settings)
    for future in admin.delete_acls([as_filter(b) for b in pipeline_acls(prefix, pipeline)]).values():
        try:
            future.result(timeout=timeout)
        except (KafkaException, TimeoutError) as exc:
            log.warning("could not revoke the ACLs of %s.*: %s", prefix, exc)


def nodes(settings: Settings) -> list[Kafka]:
    """The local cluster's nodes, in start order (an external cluster: one entry, which starts nothing)."""
    count = settings.kafka_node_count if settings.bootstrap_servers is None else 1
    return [Kafka(settings, n) for n in range(1, count + 1)]


def check_cluster_size(settings: Settings) -> None:
    """A local cluster keeps the size it was formatted with (its quorum's voters are fixed): asking for another
    size is a misconfiguration, said with the fix."""
    first = Kafka(settings, 1)
    if first.cluster_id() is None:
        return
    try:
        formatted = int((first.home / KAFKA_NODES_FILE).read_text())
    except (OSError, ValueError):
        formatted = 1  # an install from before clusters: one node
    if formatted != settings.kafka_node_count:
        folders = ", ".join(str(k.home) for k in nodes(settings.model_copy(update={"kafka_nodes": formatted})))
        raise ConfigError(
            f"the local Kafka was formatted as a {formatted}-node cluster, not "
            f"{settings.kafka_node_count}: run `shopstream up --brokers {formatted}`, or "
            f"`shopstream down` and delete {folders} to start over (their events are lost)"
        )


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
    return [
        jvm.find_java(KAFKA_MIN_JAVA, "the Kafka tools").path,
        "-Xmx256m",
        f"-Dlog4j2.configurationFile={CONFIG_DIR / 'tools-log4j2.yaml'}",
        "-cp",
        kafka_classpath(settings.runtime_dir),
        main_class,
        *args,
    ]


def over_sasl_ssl(settings: Settings) -> Settings:
    """The same settings, connecting through the local broker's SASL_SSL listener (SCRAM-SHA-512 over TLS)."""
    secure = ",".join(f"{settings.host}:{k.port('kafka_secure_port')}" for k in nodes(settings))
    return Settings(
        **{
            **settings.model_dump(),
            "bootstrap_servers": secure,
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": SCRAM_USER,
            "kafka_sasl_password": settings.kafka_scram_password,
            "kafka_ssl_ca_location": Kafka(settings).ca_file,
        }
    )
