import pytest

from core.exceptions import ConfigError
from infra.runtime.topics import load_topic_specs


def test_the_shipped_spec_declares_the_three_required_topics():
    specs = {s.name: s for s in load_topic_specs()}
    assert {"clickstream", "orders", "dead-letter"} <= set(specs)
    for spec in specs.values():
        assert spec.partitions >= 1
        assert spec.config()["min.insync.replicas"] == str(spec.min_insync_replicas)
        assert spec.config()["cleanup.policy"] in ("delete", "compact")


def _write(tmp_path, text):
    path = tmp_path / "topics.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text,message",
    [
        ("topics: []", "non-empty"),
        ("topics:\n  - partitions: 1", "needs at least a name"),
        ("topics:\n  - {name: a, partitions: 0, retention_ms: 1}", "partitions >= 1"),
        ("topics:\n  - {name: a, partitions: 1, retention_ms: 1, colour: red}", "unknown keys"),
        ("topics:\n  - {name: a, partitions: 1, retention_ms: 1, cleanup_policy: shred}", "cleanup_policy"),
        (
            "topics:\n  - {name: a, partitions: 1, retention_ms: 1}\n  - {name: a, partitions: 1, retention_ms: 1}",
            "duplicate",
        ),
        ("topics:\n  - {name: a, partitions: 1, retention_ms: 1, min_insync_replicas: 2}", "min_insync_replicas"),
        ("topics: [", "cannot read"),
    ],
)
def test_a_bad_spec_gets_a_clear_error(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_topic_specs(_write(tmp_path, text))


@pytest.mark.parametrize("brokers,expected", [(1, (1, 1)), (2, (2, 1)), (3, (3, 2)), (5, (3, 2))])
def test_the_event_topics_get_as_many_replicas_as_the_cluster_has_brokers_up_to_three(brokers, expected):
    clickstream = next(s for s in load_topic_specs() if s.name == "clickstream")
    spec = clickstream.on_cluster_of(brokers)
    assert (spec.replication_factor, spec.min_insync_replicas) == expected
    assert spec.config()["min.insync.replicas"] == str(expected[1])
