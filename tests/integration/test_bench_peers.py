"""The benchmark's peers with stock sinks, Flink SQL and Kafka Connect: a few thousand events, every one accounted.

Marked ``peers``: `make test` skips them (PyFlink alone takes minutes to install); `make test-peers` runs them,
installing each peer on first use. Each runs its peer through the run harness as `bench` does (a sandbox, the
consumer, a produce, the drain) and then reads the peer's tables: what the summary counts, and that the values
arrived as they were sent.
"""

import pytest

from core.database import connect
from infra.bench.e2e import _consumer
from infra.orchestration.harness import PipelineRun, sandbox
from producers.options import NO_FAULTS, ProduceOptions

pytestmark = [pytest.mark.peers, pytest.mark.slow]

EVENTS = 3000


def run_peer(settings, system: str):
    """``system`` drains EVENTS valid events (both clickstream schema versions); the summary and the peer's rows."""
    with sandbox(settings, warmup=False) as box:
        consumer = _consumer(system, box.settings, box.options)
        consumer.start(timeout=300)
        try:
            run = PipelineRun(box.settings, consumer)
            produced = run.produce(
                ProduceOptions(
                    rate=0,
                    count=EVENTS,
                    late_ratio=0,
                    duplicate_ratio=0,
                    faults=NO_FAULTS,
                    v2_ratio=0.5,
                    run_id=box.settings.topic_prefix,
                )
            )
            run.drain(timeout=240)
        finally:
            consumer.stop()
        summary = run.summary(produced.manifest.unique_events)
        conn = connect(box.settings, "reader")
        try:
            with conn, conn.cursor() as cur:
                cur.execute(
                    """SELECT count(*) FILTER (WHERE campaign IS NOT NULL),
                              count(*) FILTER (WHERE produced_at IS NULL),
                              count(*) FILTER (WHERE abs(extract(epoch FROM stored_at - kafka_time)) > 600
                                              OR abs(extract(epoch FROM stored_at - event_time)) > 600),
                              count(DISTINCT kafka_partition)
                       FROM peer.clickstream_events"""
                )
                clicks = cur.fetchone()
                cur.execute("SELECT count(*), count(line_count) FROM peer.orders")
                orders = cur.fetchone()
                cur.execute("SELECT count(*) FROM peer.order_lines")
                lines = cur.fetchone()[0]
        finally:
            conn.close()
    return summary, clicks, orders, lines


def assert_exact(summary):
    assert summary.produced == summary.unique_events == EVENTS
    assert (summary.stored, summary.lost, summary.duplicates_in_db, summary.rows_without_ledger) == (EVENTS, 0, 0, 0)
    assert summary.e2e_latency_ms["p95"] > 0 and "kafka_to_commit" in summary.stages_ms


def assert_values_arrived(clicks):
    with_campaign, without_produced_at, far_off, partitions = clicks
    assert with_campaign > 0  # schema v2's field, read through the registry; v1 records were stored too (exact)
    assert without_produced_at == 0  # the header, carried into the row
    assert far_off == 0  # event and Kafka times are instants, not shifted by a time zone
    assert partitions > 1


def test_flink_peer_stores_every_event_once_with_its_order_lines(running_stack):
    summary, clicks, orders, lines = run_peer(running_stack, "flink")
    assert_exact(summary)
    assert_values_arrived(clicks)
    n_orders, with_line_count = orders
    assert n_orders > 0 and with_line_count == n_orders
    assert lines >= n_orders  # UNNEST: every order has at least one line


def test_connect_peer_stores_every_event_once_without_order_lines(running_stack):
    summary, clicks, orders, lines = run_peer(running_stack, "connect")
    assert_exact(summary)
    assert_values_arrived(clicks)
    n_orders, with_line_count = orders
    assert n_orders > 0 and with_line_count == 0  # a JDBC sink writes one table per topic: no lines, no count
    assert lines == 0
