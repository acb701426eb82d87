"""The streaming job end to end, and exactly-once under SIGKILL, against the real stack."""

from __future__ import annotations

import datetime as dt
import os
import random
import subprocess
import sys
import threading
import time

import psycopg2
import pytest

import producers
import schemas
from core import kafka
from core.kafka import log_end_offsets
from core.settings import NO_FAULTS, FaultRatios, ProduceOptions, settings_env
from infra.orchestration.processes import StreamProcess, wait_for_ledger
from infra.runtime.services.kafka import over_sasl_ssl
from monitoring.summary import RunScope, summarize
from producers.app import build_serializers
from producers.generator import EventGenerator
from producers.producer import ShopProducer
from tests.fixtures.database import scalar
from tests.fixtures.kafka import consume_all
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.slow

ALL_FAULTS = FaultRatios(schema=0.01, data_type=0.01, completeness=0.015, business_rules=0.02)

# KPIs recomputed from the stored facts, compared with what the sink maintained.
KPI_CHECKS = {
    "revenue": (
        """SELECT coalesce(sum(revenue), 0), coalesce(sum(units), 0), coalesce(sum(orders), 0)
                   FROM kpi_revenue_minute""",
        """SELECT coalesce(sum(r), 0), coalesce(sum(u), 0), coalesce(sum(n), 0) FROM (
                     SELECT sum(l.line_total) r, sum(l.quantity) u, count(DISTINCT l.event_id) n
                     FROM order_lines l JOIN orders o USING (event_time, event_id)
                     GROUP BY date_trunc('minute', l.event_time), l.category, o.currency) x""",
    ),
    "revenue_by_minute": (
        """SELECT count(*) FROM kpi_revenue_minute k FULL JOIN (
                               SELECT date_trunc('minute', l.event_time) w, l.category, o.currency,
                                      sum(l.line_total) r, count(DISTINCT l.event_id) n
                               FROM order_lines l JOIN orders o USING (event_time, event_id) GROUP BY 1, 2, 3) f
                             ON k.window_start = f.w AND k.category = f.category AND k.currency = f.currency
                             WHERE k.revenue IS DISTINCT FROM f.r OR k.orders IS DISTINCT FROM f.n""",
        "SELECT 0",
    ),
    "funnel": (
        """SELECT count(*) FROM kpi_funnel_minute k FULL JOIN (
                    SELECT w, sum(pv) pv, sum(atc) atc, sum(co) co, sum(pu) pu FROM (
                      SELECT date_trunc('minute', event_time) w, (event_type = 'page_view')::int pv,
                             (event_type = 'add_to_cart')::int atc, (event_type = 'checkout_started')::int co,
                             0 pu FROM clickstream_events
                      UNION ALL SELECT date_trunc('minute', event_time), 0, 0, 0, 1 FROM orders) x GROUP BY w) f
                  ON k.window_start = f.w
                  WHERE k.page_views IS DISTINCT FROM f.pv OR k.add_to_carts IS DISTINCT FROM f.atc
                     OR k.checkouts IS DISTINCT FROM f.co OR k.purchases IS DISTINCT FROM f.pu""",
        "SELECT 0",
    ),
    "sessions": (
        """SELECT count(*) FROM kpi_active_sessions_minute k FULL JOIN (
                      SELECT date_trunc('minute', event_time) w, count(DISTINCT session_id) n
                      FROM clickstream_events GROUP BY 1) f ON k.window_start = f.w
                    WHERE k.active_sessions IS DISTINCT FROM f.n""",
        "SELECT 0",
    ),
}


def produce_stray(settings, when: dt.datetime) -> None:
    """One valid click whose event_time is long ago (but after 2000): it must be stored, in the default partition."""
    gen = EventGenerator(ProduceOptions(count=1, run_id="stray", sessions=1, faults=NO_FAULTS))
    event = next(e for e in iter(gen) if e.family == "clickstream")
    event.record["event_time"] = int(when.timestamp() * 1_000_000)
    producer = ShopProducer(settings, {}, build_serializers(settings))
    producer.producer.produce(
        settings.topic("clickstream"), producer.serializers[("clickstream", event.version)](event.record), event.key
    )
    assert producer.producer.flush(30) == 0


def test_end_to_end_every_event_is_stored_or_quarantined_exactly_once(pipeline_env):
    """Through the broker's SASL_SSL listener (SCRAM over TLS): the producer, the stream job
    (librdkafka and Spark's Java client) and one of Kafka's own tools are configured by
    the one connection model alone. The other pipeline tests use PLAINTEXT."""
    plain, options = pipeline_env
    # The stray click below is from 2021, past any retention: the job's upkeep (its first round 30 s after the
    # start) would archive and trim its KPI minute while its fact stays in the default partition (never tiered),
    # and the KPI check would then depend on how long the run took. Here the KPIs are kept for a century.
    settings = over_sasl_ssl(plain).model_copy(update={"trim_days": 36_500})
    assert settings.kafka.librdkafka()["security.protocol"] == "SASL_SSL"
    topics = list(schemas.event_topics(settings).values())
    start = log_end_offsets(settings, topics)
    manifest = producers.run(
        settings,
        ProduceOptions(
            rate=0,
            count=20_000,
            faults=ALL_FAULTS,
            duplicate_ratio=0.02,
            late_ratio=0.05,
            late_max_s=90,
            v2_ratio=0.5,
            run_id="e2e",
        ),
    ).manifest
    produce_stray(settings, dt.datetime(2021, 6, 1, tzinfo=dt.UTC))
    end = log_end_offsets(settings, topics)
    stream = StreamProcess(settings, options)
    stream.start()
    try:
        wait_for_ledger(settings, stream.pipeline_key(), end, stream, timeout=300)
        key = stream.pipeline_key()
    finally:
        assert stream.stop() == 0
    unique = manifest.unique_events + 1
    s = summarize(settings, RunScope(start, end, key), unique, options.late_threshold_s)
    assert s["produced"] == manifest.produced + 1
    assert (s["lost"], s["duplicates_in_db"], s["rows_without_ledger"]) == (0, 0, 0)
    assert s["stored"] + s["quarantined"] == unique
    assert s["quality"] == manifest.to_dict()["quality"]
    assert s["quality_by_rule"] == dict(manifest.quarantine_expected().items())
    # duplicates were sent and not stored twice
    assert manifest.duplicates > 0
    assert scalar(settings, "SELECT sum(duplicates) FROM sink_ledger") == manifest.duplicates
    # both schema versions landed
    assert scalar(settings, "SELECT count(DISTINCT schema_version) FROM clickstream_events") == 2
    # late events are stored and counted, not dropped
    late = scalar(settings, "SELECT count(*) FROM clickstream_events WHERE kafka_time - event_time > '5 s'") + scalar(
        settings, "SELECT count(*) FROM orders WHERE kafka_time - event_time > '5 s'"
    )
    assert late > 0 and late == scalar(settings, "SELECT sum(late) FROM sink_ledger") == s["late_events"]
    # the stray timestamp went to the default partition
    assert scalar(settings, "SELECT count(*) FROM clickstream_events_default") == 1
    assert scalar(settings, "SELECT count(*) FROM ONLY clickstream_events_default WHERE event_time < '2022-01-01'") == 1
    # KPIs equal a recomputation from the stored facts
    for name, (kpi, recomputed) in KPI_CHECKS.items():
        assert scalar(settings, kpi) == scalar(settings, recomputed), name
    # the dead-letter topic has every quarantined record, with its reason in headers
    dead = consume_all(settings, [settings.topic("dead-letter")])
    assert len(dead) == s["quarantined"]
    headers = dict(dead[0].headers())
    assert {"source_topic", "source_partition", "source_offset", "category", "rule"} <= set(headers)
    # the consumer group mirrors the ledger: no lag
    consumer = kafka.consumer(settings, options.pipeline)
    from confluent_kafka import TopicPartition

    committed = consumer.committed([TopicPartition(t, int(p)) for t, parts in end.items() for p in parts], timeout=10)
    consumer.close()
    assert {(tp.topic, str(tp.partition)): tp.offset for tp in committed} == {
        (t, p): o for t, parts in end.items() for p, o in parts.items()
    }
    # Kafka's own tool sees the same through a generated --command-config file
    tool = subprocess.run(
        [sys.executable, "-m", "infra", "kafka", "consumer-groups", "--describe", "--group", options.pipeline],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **settings_env(settings)},
    )
    assert tool.returncode == 0, tool.stderr
    assert all(topic in tool.stdout for topic in topics)


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(pipeline_env):
    settings, options = pipeline_env
    topics = list(schemas.event_topics(settings).values())
    start = log_end_offsets(settings, topics)
    result: dict = {}
    producing = threading.Thread(
        target=lambda: result.update(
            r=producers.run(
                settings,
                ProduceOptions(rate=2500, duration_s=45, faults=ALL_FAULTS, duplicate_ratio=0.01, run_id="crash"),
            )
        )
    )
    producing.start()
    rng = random.Random(11)
    kills = []
    options = options.model_copy(update={"max_offsets_per_trigger": 4000})  # many small batches
    stream = StreamProcess(settings, options)
    for attempt in range(4):
        stream.start()
        if attempt == 3:
            break
        if attempt == 1:
            # at least once in the middle of a sink transaction: killed right when it is seen open
            kills.append("in transaction" if _wait_for_open_transaction(settings, timeout=90) else "timeout")
        else:
            # a random moment once this incarnation is committing batches
            committed = _ledger_rows(settings)
            wait_for(
                lambda committed=committed: _ledger_rows(settings) > committed,
                60,
                "this incarnation's first commit",
                0.05,
            )
            time.sleep(rng.uniform(0, 1.5))
            kills.append("random")
        stream.kill()
    producing.join(120)
    end = log_end_offsets(settings, topics)
    try:
        wait_for_ledger(settings, stream.pipeline_key(), end, stream, timeout=300)
        key = stream.pipeline_key()
    finally:
        stream.stop()
    manifest = result["r"].manifest
    s = summarize(settings, RunScope(start, end, key), manifest.unique_events, options.late_threshold_s)
    assert kills.count("in transaction") >= 1, kills
    assert (s["lost"], s["duplicates_in_db"]) == (0, 0)
    assert s["stored"] + s["quarantined"] == manifest.unique_events
    assert s["quality"] == manifest.to_dict()["quality"]
    assert _ledger_rows(settings) >= 6


def _ledger_rows(settings) -> int:
    return scalar(settings, "SELECT count(*) FROM sink_ledger")


def _wait_for_open_transaction(settings, timeout: float) -> bool:
    """Poll (one connection, ~1 ms apart) until the sink holds a transaction that has written rows."""
    conn = psycopg2.connect(settings.postgres_dsn("admin", "postgres"))
    conn.autocommit = True

    def sink_transaction_open() -> bool:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND usename = %s AND backend_xid IS NOT NULL",
                (settings.postgres_db, settings.writer_user),
            )
            return cur.fetchone()[0] > 0

    try:
        return wait_for(sink_transaction_open, timeout, "an open sink transaction", interval=0.001)
    except AssertionError:
        return False
    finally:
        conn.close()
