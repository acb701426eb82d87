"""The streaming job end to end against the real stack (exactly-once under SIGKILL: test_crash.py)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from confluent_kafka import TopicPartition
from pydantic import SecretStr

from core import kafka
from core.database import connect
from core.exceptions import ConfigError, ServiceUnhealthy
from core.settings import Settings, settings_env
from infra.orchestration.harness import PipelineRun, sandbox
from infra.orchestration.processes import StreamProcess
from infra.runtime.services.kafka import Kafka, over_sasl_ssl
from infra.runtime.topics import delete_topics, ensure_topics, load_topic_specs
from monitoring.summary import RunSummary
from producers.app import build_serializers
from producers.generator import EventGenerator
from producers.manifest import Manifest
from producers.options import NO_FAULTS, ProduceOptions
from producers.producer import ShopProducer
from streaming.options import StreamOptions
from tests.fixtures.database import scalar, sessions
from tests.fixtures.kafka import consume_all
from tests.fixtures.pipeline import ALL_FAULTS
from tests.fixtures.processes import processes_mentioning

pytestmark = pytest.mark.slow

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


@dataclass(frozen=True)
class EndToEnd:
    """One run shared by the end-to-end tests below: 20,000 events with every kind of bad data, duplicates, late
    events, both schema versions and a stray click from 2021, through the broker's SASL_SSL listener."""

    settings: Settings
    options: StreamOptions
    run: PipelineRun
    manifest: Manifest
    summary: RunSummary
    log: str  # what the job wrote to its log in this run
    secrets_on_command_lines: dict[str, dict[int, str]]  # looked for while the job ran: what `ps` shows anyone
    database_sessions: list[tuple[str, str, bool]]  # (user, database, over TLS), looked at once the job drained


@pytest.fixture(scope="module")
def e2e(running_stack, tmp_path_factory) -> Iterator[EndToEnd]:
    """Through the broker's SASL_SSL listener (SCRAM over TLS, on the ACLs of its prefix alone) and PostgreSQL over
    TLS with sslmode=verify-full: the producer, the stream job (librdkafka and Spark's Java client), its sink and
    one of Kafka's own tools are configured by the connection models alone. The other pipeline tests use PLAINTEXT
    and sslmode=prefer. The job warms up here (and only here), so that the warm-up's path stays proven."""
    checkpoint = tmp_path_factory.mktemp("e2e") / "checkpoint"
    with sandbox(running_stack, kind="test", checkpoint=checkpoint, driver_memory="1g", warmup=True) as box:
        # The stray click below is from 2021, past any retention: the job's upkeep (its first round 30 s after the
        # start) would archive and trim its KPI minute while its fact stays in the default partition (never
        # tiered), and the KPI check would then depend on how long the run took. Here the KPIs are kept a century.
        settings = over_sasl_ssl(box.settings).model_copy(
            update={"trim_days": 36_500, "postgres_sslmode": "verify-full"}
        )
        stream = StreamProcess(settings, box.options)
        run = PipelineRun(settings, stream)
        manifest = run.produce(
            ProduceOptions(
                rate=0,
                count=20_000,
                faults=ALL_FAULTS,
                duplicate_ratio=0.02,
                late_ratio=0.05,
                late_max_s=90,
                v2_ratio=0.5,
                run_id="e2e",
            )
        ).manifest
        produce_stray(settings, dt.datetime(2021, 6, 1, tzinfo=dt.UTC))
        run.mark_end()
        logged = stream.log_file.stat().st_size if stream.log_file.exists() else 0
        stream.start()
        on_command_lines = {name: processes_mentioning(secret) for name, secret in configured_secrets(settings).items()}
        try:
            run.drain()
            database_sessions = sessions(settings)
        finally:
            assert stream.stop() == 0
        with open(stream.log_file, "rb") as log:
            log.seek(logged)
            text = log.read().decode(errors="replace")
        summary = run.summary(manifest.unique_events + 1)
        yield EndToEnd(settings, box.options, run, manifest, summary, text, on_command_lines, database_sessions)


def configured_secrets(settings: Settings) -> dict[str, str]:
    """Every secret setting with a value, and the broker's keystore password (generated, in a file of mode 0600)."""
    found = {
        name: value.get_secret_value()
        for name in type(settings).model_fields
        if isinstance(value := getattr(settings, name), SecretStr)
    }
    found["keystore"] = Kafka(settings).keystore_password_file.read_text().strip()
    return found


def test_no_secret_is_on_a_command_line_or_in_a_log(e2e):
    """Looked for while the job ran, in every process's command line (services, the job, its JVM, Kafka's tools),
    and after it in every log under the runtime folder's logs/."""
    secrets = configured_secrets(e2e.settings)
    assert {"writer_password", "reader_password", "postgres_superuser_password", "kafka_scram_password"} <= set(secrets)
    logs = [p for p in (e2e.settings.runtime_dir / "logs").rglob("*") if p.is_file()]
    assert logs, "the services' logs are under logs/"
    leaks = [
        f"{name} in the command line of {line[:80]!r}"
        for name, found in e2e.secrets_on_command_lines.items()
        for line in found.values()
    ]
    for log in logs:
        text = log.read_bytes()
        leaks += [f"{name} in {log}" for name, secret in secrets.items() if secret.encode() in text]
    assert leaks == []


def test_postgresql_clients_verify_the_servers_certificate(e2e):
    """The job's sink and this test's reader connected with sslmode=verify-full (the local CA, by default); the
    registry, started by the stack with the default sslmode (prefer), is encrypted too. A client given another CA
    is refused: the certificate is checked, not merely offered."""
    assert e2e.settings.postgres("writer").dsn().count("sslmode=verify-full") == 1
    job = [tls for user, db, tls in e2e.database_sessions if db == e2e.settings.postgres_db]
    assert job and all(job), e2e.database_sessions
    registry = [tls for user, db, tls in e2e.database_sessions if user == "shopstream_registry"]
    assert registry and all(registry), e2e.database_sessions
    assert scalar(e2e.settings, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is True
    wrong_ca = e2e.settings.model_copy(update={"postgres_ssl_ca_location": Kafka(e2e.settings).ca_file})
    with pytest.raises(ServiceUnhealthy, match=r"certificate verify failed.*SHOPSTREAM_POSTGRES_"):
        connect(wrong_ca, "reader").close()


def test_every_event_is_stored_or_quarantined_exactly_once(e2e):
    s, manifest = e2e.summary, e2e.manifest
    assert s.produced == manifest.produced + 1
    assert s.exact
    assert s.stored + s.quarantined == manifest.unique_events + 1
    assert s.quality == manifest.to_dict()["quality"]
    assert s.quality_by_rule == manifest.quarantine_expected()


def test_duplicates_sent_are_counted_and_not_stored_twice(e2e):
    assert e2e.manifest.duplicates > 0
    assert scalar(e2e.settings, "SELECT sum(duplicates) FROM sink_ledger") == e2e.manifest.duplicates


def test_both_schema_versions_land(e2e):
    assert scalar(e2e.settings, "SELECT count(DISTINCT schema_version) FROM clickstream_events") == 2


def test_late_events_are_stored_and_counted_not_dropped(e2e):
    late = scalar(e2e.settings, "SELECT count(*) FROM clickstream_events WHERE kafka_time - event_time > '5 s'")
    late += scalar(e2e.settings, "SELECT count(*) FROM orders WHERE kafka_time - event_time > '5 s'")
    assert late > 0 and late == scalar(e2e.settings, "SELECT sum(late) FROM sink_ledger") == e2e.summary.late_events


def test_a_stray_timestamp_goes_to_the_default_partition(e2e):
    assert scalar(e2e.settings, "SELECT count(*) FROM clickstream_events_default") == 1
    old = "SELECT count(*) FROM ONLY clickstream_events_default WHERE event_time < '2022-01-01'"
    assert scalar(e2e.settings, old) == 1


@pytest.mark.parametrize("kpi", sorted(KPI_CHECKS))
def test_kpis_equal_a_recomputation_from_the_stored_facts(e2e, kpi):
    maintained, recomputed = KPI_CHECKS[kpi]
    assert scalar(e2e.settings, maintained) == scalar(e2e.settings, recomputed)


def test_the_dead_letter_topic_has_every_quarantined_record_with_its_reason(e2e):
    dead = consume_all(e2e.settings, [e2e.settings.topic("dead-letter")])
    assert len(dead) == e2e.summary.quarantined
    headers = dict(dead[0].headers())
    assert {"source_topic", "source_partition", "source_offset", "category", "rule"} <= set(headers)


def test_the_consumer_group_mirrors_the_ledger(e2e):
    end = e2e.run.scope.end
    consumer = kafka.consumer(e2e.settings, e2e.options.pipeline)
    try:
        wanted = [TopicPartition(t, p) for t, parts in end.items() for p in parts]
        committed = consumer.committed(wanted, timeout=10)
    finally:
        consumer.close()
    assert {(tp.topic, tp.partition): tp.offset for tp in committed} == {
        (t, p): o for t, parts in end.items() for p, o in parts.items()
    }


def test_kafkas_own_tool_sees_the_group_through_a_generated_command_config(e2e):
    tool = subprocess.run(
        [sys.executable, "-m", "infra", "kafka", "consumer-groups", "--describe", "--group", e2e.options.pipeline],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **settings_env(e2e.settings)},
        check=False,
    )
    assert tool.returncode == 0, tool.stderr
    assert all(topic in tool.stdout for topic in e2e.run.topics)


def test_the_pipelines_user_is_refused_another_prefixs_topics_in_one_line(e2e, running_stack):
    """The broker's authorizer: the SASL user ran the whole pipeline above on its prefix's ACLs alone; topics
    that exist under another prefix (made by the PLAINTEXT listener's super user) are refused, with the fix."""
    other = f"other{uuid.uuid4().hex[:8]}"
    specs = [s for s in load_topic_specs() if s.name != "dead-letter"]
    ensure_topics(running_stack, other, specs)
    try:
        produce = subprocess.run(
            [sys.executable, "-m", "infra", "produce", "--count", "10"],
            capture_output=True,
            text=True,
            timeout=120,
            env={
                **os.environ,
                **settings_env(e2e.settings),
                "SHOPSTREAM_TOPIC_PREFIX": other,
                "SHOPSTREAM_PRODUCER_METRICS_PORT": "0",
            },
            check=False,
        )
        assert produce.returncode == 2, produce.stderr
        (line,) = produce.stderr.strip().splitlines()
        assert f"Kafka refused user shopstream access to topic {other}." in line, line
        assert "TOPIC_AUTHORIZATION_FAILED" in line and "shopstream kafka acls --add" in line, line
        with pytest.raises(ConfigError, match="refused user shopstream access to topic another"):
            ensure_topics(e2e.settings, "another", specs[:1])
    finally:
        delete_topics(running_stack, other, specs)


def test_the_job_warmed_up_on_its_own_topics_and_removed_them(e2e):
    assert "warm-up took" in e2e.log, e2e.log[-2000:]
    left = kafka.admin(e2e.settings).list_topics(timeout=10).topics
    assert not [t for t in left if t.startswith(f"{e2e.settings.topic_prefix}.warmup-")]
