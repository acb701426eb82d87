"""The job against a replicated Kafka (`up --brokers 3`): three KRaft nodes, the event topics with 3 replicas and
min.insync.replicas=2. The leader of an event partition dies (kill -9) mid-run and stays dead: the producer, the
job and the accounting carry on with the two nodes left."""

from __future__ import annotations

import os
import signal
import time

import pytest

import schemas
from core import kafka
from infra.runtime import stack
from infra.runtime.services.kafka import Kafka, nodes
from infra.runtime.services.postgres import drop_database
from infra.runtime.topics import ensure_topics, load_topic_specs
from producers.options import ProduceOptions
from tests.fixtures.database import own_database
from tests.fixtures.faults import child_pids
from tests.fixtures.pipeline import (
    UNTIL_FINISHED_S,
    batches_picked_up_since,
    drain_and_account,
    ledger_rows,
    start_job_and_producer,
    stream_options,
)
from tests.fixtures.processes import processes_mentioning
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kafka_cluster(running_stack, tmp_path_factory):
    """Three Kafka nodes of their own (a runtime folder of their own, ports 19092, 19192, 19292), beside the
    session's PostgreSQL and registry; the Kafka jars are the session's. Stopped afterwards, nothing left."""
    runtime_dir = tmp_path_factory.mktemp("kafka3")
    (runtime_dir / "jvm").symlink_to(running_stack.runtime_dir / "jvm")
    cluster = running_stack.model_copy(
        update={
            "runtime_dir": runtime_dir,
            "kafka_nodes": 3,
            "kafka_port": 19092,
            "kafka_controller_port": 19093,
            "kafka_secure_port": 19094,
        }
    )
    stack.up(cluster, only=["kafka"])
    try:
        yield cluster
    finally:
        stack.down_services(cluster, ["kafka"])
        assert processes_mentioning(str(runtime_dir)) == {}, "a Kafka node outlived `down`"


def test_the_cluster_has_three_nodes_and_replicated_topics(kafka_cluster):
    settings = kafka_cluster.model_copy(update={"kafka_nodes": None})  # the size as formatted, as other commands see it
    assert settings.kafka_bootstrap == "127.0.0.1:19092,127.0.0.1:19192,127.0.0.1:19292"
    assert [s.name for s in stack.status(settings) if s.name.startswith("kafka") and s.healthy] == [
        "kafka",
        "kafka-2",
        "kafka-3",
    ]
    topics = kafka.admin(settings).list_topics(timeout=10).topics
    for topic in schemas.event_topics(settings).values():
        assert all(len(p.replicas) == 3 and len(p.isrs) == 3 for p in topics[topic].partitions.values()), topic


def test_the_job_and_the_producer_ride_out_the_death_of_a_partition_leader(kafka_cluster, unique_name, tmp_path):
    settings = own_database(kafka_cluster.model_copy(update={"topic_prefix": unique_name}), unique_name)
    ensure_topics(settings, settings.topic_prefix, load_topic_specs())
    options = stream_options(unique_name, tmp_path / "checkpoint")
    run, stream, producing = start_job_and_producer(
        settings, options, ProduceOptions(rate=1500, duration_s=UNTIL_FINISHED_S, run_id="replicated")
    )
    try:
        wait_for(lambda: ledger_rows(settings), 120, "the first commit")
        metadata = kafka.admin(settings).list_topics(timeout=10)
        leader = metadata.topics[run.topics[0]].partitions[0].leader
        victim = Kafka(settings, leader)
        os.kill(victim.process.pid(), signal.SIGKILL)
        killed_at = time.time()
        wait_for(lambda: victim.process.pid() is None, 30, f"node {leader} to die")
        # A new leader from the in-sync replicas, and the job carries on: batches read after the death commit.
        new_leader = wait_for(lambda: _leader_other_than(settings, run.topics[0], leader), 60, "a new leader")
        wait_for(lambda: batches_picked_up_since(settings, killed_at), 120, "a commit of a batch read after the death")
        first_s = time.time() - killed_at
        wait_for(
            lambda: batches_picked_up_since(settings, killed_at) >= 3, 120, "more commits after the leader's death"
        )
        print(
            f"node {leader} killed; partition 0 of {run.topics[0]} now led by node {new_leader}; the first batch "
            f"read after the death committed {first_s:.1f} s after it, the third {time.time() - killed_at:.1f} s"
        )
        assert stream.alive() and len(child_pids(stream.proc.pid)) == 1, "the job itself was not restarted"
    finally:
        producing.finish(180)  # what it was for has happened: no need to produce on
    manifest = producing.result.manifest
    assert sum(manifest.failed.values()) == 0, "every delivery report was an acknowledgement"
    try:
        drain_and_account(run, manifest)
    finally:
        victim.start()  # the module's other tests and its teardown see three nodes again
        drop_database(settings, settings.postgres_db)


def _leader_other_than(settings, topic: str, dead: int) -> int | None:
    leader = kafka.admin(settings).list_topics(timeout=10).topics[topic].partitions[0].leader
    return leader if leader not in (dead, -1) else None


def test_nodes_are_numbered_from_the_first_install(kafka_cluster):
    """Node 1 keeps a one-node install's name and folder; nodes 2 and 3 sit beside it, 100 ports up."""
    names = [(k.name, k.home.name, k.port("kafka_port")) for k in nodes(kafka_cluster)]
    assert names == [("kafka", "kafka", 19092), ("kafka-2", "kafka-2", 19192), ("kafka-3", "kafka-3", 19292)]
