"""The local Kafka's server.properties, alone and as a node of a three-node quorum (no broker runs here)."""

import pytest
from confluent_kafka.admin import AclBindingFilter

from core.exceptions import ConfigError
from core.settings import KAFKA_NODES_FILE, Settings
from infra.runtime.services.kafka import (
    SHARED_GROUP_PREFIX,
    Kafka,
    as_filter,
    check_cluster_size,
    pipeline_acls,
    shared_acls,
)


def _properties(settings: Settings, node: int) -> dict[str, str]:
    text = Kafka(settings, node).server_properties()
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_one_node_is_its_own_quorum_with_unreplicated_internal_topics(tmp_path):
    props = _properties(Settings(runtime_dir=tmp_path), 1)
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["offsets.topic.replication.factor"] == "1"


def test_node_two_of_three_votes_in_one_quorum_on_ports_a_hundred_up(tmp_path):
    props = _properties(Settings(runtime_dir=tmp_path, kafka_nodes=3), 2)
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293"
    assert props["listeners"].startswith("PLAINTEXT://127.0.0.1:9192,CONTROLLER://127.0.0.1:9193,SECURE://")
    assert props["log.dirs"].endswith("/kafka-2/data")
    assert (props["offsets.topic.replication.factor"], props["transaction.state.log.min.isr"]) == ("3", "2")
    assert props["unclean.leader.election.enable"] == "false"


def test_a_cluster_cannot_change_size_and_the_error_says_what_to_do(tmp_path):
    data = tmp_path / "kafka" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("cluster.id=abc\nnode.id=1\n")
    check_cluster_size(Settings(runtime_dir=tmp_path))  # an install from before clusters is one node
    with pytest.raises(ConfigError, match=r"formatted as a 1-node cluster, not 3: run `shopstream up --brokers 1`"):
        check_cluster_size(Settings(runtime_dir=tmp_path, kafka_nodes=3))
    (tmp_path / "kafka" / KAFKA_NODES_FILE).write_text("3")
    check_cluster_size(Settings(runtime_dir=tmp_path))


def test_an_external_cluster_is_one_entry_whatever_was_formatted_here(tmp_path):
    from infra.runtime.services.kafka import nodes

    settings = Settings(runtime_dir=tmp_path, kafka_nodes=3, bootstrap_servers="k1:9092,k2:9092")
    assert [(k.name, k.managed) for k in nodes(settings)] == [("kafka", False)]
    assert [k.name for k in nodes(settings.model_copy(update={"bootstrap_servers": None}))] == [
        "kafka",
        "kafka-2",
        "kafka-3",
    ]


def test_a_sandboxs_revoke_takes_back_its_own_acls_and_leaves_the_shared_one():
    """Every pipeline is granted its own ACLs and the shared group prefix (the probe's, the offset reader's); a
    sandbox's revoke takes back its own only, as the filters delete_acls needs, each matching one binding."""
    own = pipeline_acls("sbx1", pipeline="sbx1")
    assert {(b.restype.name, b.name, b.resource_pattern_type.name) for b in own} == {
        ("TOPIC", "sbx1.", "PREFIXED"),
        ("GROUP", "sbx1.", "PREFIXED"),
        ("GROUP", "sbx1", "LITERAL"),
    }
    assert [b.name for b in shared_acls()] == [SHARED_GROUP_PREFIX]
    filters = [as_filter(b) for b in own]
    assert all(type(f) is AclBindingFilter for f in filters)
    assert [(f.restype, f.name, f.resource_pattern_type, f.principal, f.operation) for f in filters] == [
        (b.restype, b.name, b.resource_pattern_type, b.principal, b.operation) for b in own
    ]
