"""PostgreSQL with a replica (`up --postgres-replicas 1`): two Patroni members and etcd of their own (a runtime folder
of their own, ports 15432/15532, 18008/18108, 12379/12380). The leader's node is lost (its agent and its postmaster,
SIGKILL): the standby is promoted, a writer on the multi-host DSN goes on, and no acknowledged commit is lost. The
old node, back, rejoins as a standby in sync (pg_rewind). The stream job through a failover is `chaos
--scenarios pg-primary-kill`'s."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time

import psycopg2
import pytest

from core.database import connect, open_connection
from core.exceptions import ConfigError
from infra.cli.runtime import status_document
from infra.runtime import stack
from infra.runtime.services import patroni
from infra.runtime.services.patroni import PatroniMember
from tests.fixtures.processes import processes_mentioning
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.own_services]

SERVICES = ["etcd", "postgres"]


@pytest.fixture(scope="module")
def pair(settings, tmp_path_factory):
    runtime_dir = tmp_path_factory.mktemp("pg-pair")
    cluster = settings.model_copy(
        update={
            "runtime_dir": runtime_dir,
            "postgres_replicas": 1,
            "postgres_port": 15432,
            "patroni_port": 18008,
            "etcd_port": 12379,
            "etcd_peer_port": 12380,
        }
    )
    stack.up(cluster, only=SERVICES)
    try:
        yield cluster.model_copy(update={"postgres_replicas": None})  # the mode as recorded, as other commands see it
    finally:
        stack.down_services(cluster, SERVICES)
        assert processes_mentioning(str(runtime_dir)) == {}, "a member or etcd outlived `down`"


def roles(settings) -> dict[str, str]:
    return {m["name"]: m["role"] for m in patroni.cluster(settings)}


class Writer(threading.Thread):
    """Inserts 1, 2, 3… one commit each through the multi-host DSN, reconnecting after an error, as a client of the
    platform does; ``acked`` holds each number whose commit returned."""

    def __init__(self, settings):
        super().__init__(daemon=True)
        self.settings, self.acked, self.stop, self.errors = settings, [], threading.Event(), 0

    def run(self) -> None:
        numbers = itertools.count(1)  # never reused: an insert whose commit failed may have committed all the same
        while not self.stop.is_set():
            try:
                with open_connection(self.settings, "writer") as conn:
                    while not self.stop.is_set():
                        n = next(numbers)
                        with conn.cursor() as cur:
                            cur.execute("INSERT INTO failover_probe VALUES (%s)", (n,))
                        conn.commit()
                        self.acked.append(n)
                        time.sleep(0.01)
            except psycopg2.Error:
                self.errors += 1
                time.sleep(0.2)


def stored(settings) -> set[int]:
    with connect(settings, "writer") as conn, conn.cursor() as cur:
        cur.execute("SELECT n FROM failover_probe")
        return {row[0] for row in cur.fetchall()}


def test_the_standby_takes_over_the_lost_primary_and_no_acknowledged_commit_is_lost(pair):
    wait_for(lambda: patroni.in_sync(pair), 60, "a leader and a standby in sync")
    assert roles(pair) == {"member-1": "leader", "member-2": "sync_standby"}
    document = status_document(pair)
    assert [(m["name"], m["role"], m["port"]) for m in document["postgres_members"]] == [
        ("member-1", "leader", 15432),
        ("member-2", "sync_standby", 15532),
    ]
    assert all(m["agent_pid"] and m["postmaster_pid"] for m in document["postgres_members"])
    with pytest.raises(ConfigError, match="runs with 1 replica"):  # the mode changes only between down and up
        stack.up(pair.model_copy(update={"postgres_replicas": 0}), only=SERVICES)

    with connect(pair, "writer") as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE failover_probe (n bigint PRIMARY KEY)")
    writer = Writer(pair)
    writer.start()
    wait_for(lambda: len(writer.acked) >= 100, 30, "100 commits before the fault")

    leader = patroni.members(pair)[0]
    assert isinstance(leader, PatroniMember)
    postmaster = leader.postmaster_pid()
    assert postmaster is not None
    os.kill(leader.process.pid() or 0, signal.SIGKILL)
    os.kill(postmaster, signal.SIGKILL)
    acked_at_fault = len(writer.acked)
    wait_for(lambda: roles(pair).get("member-2") == "leader", 60, "member 2 promoted")
    wait_for(lambda: len(writer.acked) > acked_at_fault + 100, 60, "100 commits on the new primary")
    writer.stop.set()
    writer.join(10)
    assert writer.errors > 0, "the writer never saw the primary go: the fault did not happen"
    assert set(writer.acked) - stored(pair) == set(), "an acknowledged commit was lost in the failover"

    leader.start()  # the node comes back: it rejoins as a standby, rewound to the new primary's timeline
    wait_for(lambda: patroni.in_sync(pair), 120, "member 1 back as a standby in sync")
    assert roles(pair) == {"member-1": "sync_standby", "member-2": "leader"}
    replica = pair.model_copy(update={"postgres_host": f"{pair.host}:15432"})  # member 1 alone, read-only
    with connect(replica, "reader") as conn, conn.cursor() as cur:
        wait_for(lambda: _count(cur) == len(stored(pair)), 30, "member 1 to have every row")


def _count(cur) -> int:
    cur.execute("SELECT count(*) FROM failover_probe")
    return cur.fetchone()[0]
