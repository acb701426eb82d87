"""Replays through the consumer group and Kafka's own tools (issue 16), against the real services.

One run fills its own topics and database; then a bounded replay by datetime beside the live job, a rebuild from
earliest into an empty database, and a reset made by hand while the job runs, followed by `--from-group-offsets`.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid

import pytest

import producers
import schemas
from core import ledger
from core.database import connect
from core.kafka import log_end_offsets
from core.settings import settings_env
from infra.orchestration.harness import PipelineRun
from infra.orchestration.processes import StreamProcess, job_metrics
from infra.runtime.services.kafka import tool_command
from infra.runtime.services.postgres import drop_database
from infra.runtime.topics import delete_topics, ensure_topics, load_topic_specs
from producers.options import FaultRatios, ProduceOptions
from streaming.offsets import group_offsets
from tests.fixtures.database import own_database, scalar
from tests.fixtures.pipeline import stream_options
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.slow

NO_FAULTS = FaultRatios(schema=0, data_type=0, completeness=0, business_rules=0)
FACT_KEYS = {
    "clickstream_events": "event_time, event_id",
    "orders": "event_time, event_id",
    "order_lines": "event_time, event_id, line_no",
}
KPI_TABLES = ("kpi_funnel_minute", "kpi_revenue_minute", "kpi_active_sessions_minute")
# Not business columns: which batch wrote a fact, and which Kafka copy of it won. A producer's re-send is a second
# copy of an event; when both copies fall in one batch, either may be the stored one, so a rebuild (other batches)
# can keep the other copy's coordinates. The business columns must be equal.
LINEAGE = ("batch_id", "kafka_topic", "kafka_partition", "kafka_offset", "kafka_time", "produced_at")


class Run:
    """The live pipeline of this module: its settings, job, manifest and the run's time range."""

    def __init__(self, settings, options, stream, manifest, since, until):
        self.settings, self.options, self.stream, self.manifest = settings, options, stream, manifest
        self.since, self.until = since, until

    @property
    def topics(self) -> list[str]:
        return list(schemas.event_topics(self.settings).values())


@pytest.fixture(scope="module")
def live(running_stack, tmp_path_factory):
    name = f"t{uuid.uuid4().hex[:10]}"
    settings = own_database(running_stack.model_copy(update={"topic_prefix": name}), name)
    specs = load_topic_specs()
    ensure_topics(settings, name, specs)
    options = stream_options(name, tmp_path_factory.mktemp("checkpoint") / "live")
    stream = StreamProcess(settings, options)
    stream.start()
    try:
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
        manifest = producers.run(settings, ProduceOptions(rate=0, count=3000, duplicate_ratio=0.02)).manifest
        PipelineRun(settings, stream).drain()
        until = dt.datetime.now(dt.UTC)
        yield Run(settings, options, stream, manifest, since, until)
    finally:
        stream.stop()
        delete_topics(settings, name, specs)
        drop_database(settings, settings.postgres_db)


def shopstream(settings, *args) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [sys.executable, "-m", "infra", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **settings_env(settings)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def snapshot(settings) -> dict:
    """What must not change: facts by key and business columns (LINEAGE aside), quarantine by coordinates, KPIs."""
    out = {}
    with connect(settings, "reader") as conn, conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
        for table, key in FACT_KEYS.items():
            cur.execute(
                "SELECT string_agg(column_name, ', ' ORDER BY ordinal_position) FROM information_schema.columns "
                "WHERE table_name = %s AND column_name <> ALL(%s)",
                (table, list(LINEAGE)),
            )
            (columns,) = cur.fetchone()
            cur.execute(f"SELECT ({columns})::text FROM {table} ORDER BY {key}")
            out[table] = [r for (r,) in cur.fetchall()]
        cur.execute(
            "SELECT source_topic, source_partition, source_offset, category, rule FROM quarantine ORDER BY 1, 2, 3"
        )
        out["quarantine"] = cur.fetchall()
        for table in KPI_TABLES:
            cur.execute(f"SELECT t::text FROM {table} t ORDER BY 1")
            out[table] = [r for (r,) in cur.fetchall()]
    conn.close()
    return out


def replay_ledger(settings, pipeline: str) -> tuple:
    return scalar(
        settings,
        f"SELECT array[count(*), sum(records_in), sum(stored), sum(duplicates), sum(quarantined), "
        f"count(*) FILTER (WHERE replay)] FROM sink_ledger "
        f"WHERE split_part(pipeline, ':', 1) = '{pipeline}'",
    )


def dead_letters(settings) -> dict:
    return log_end_offsets(settings, [settings.topic("dead-letter")])


def test_a_bounded_replay_by_datetime_stores_nothing_twice_and_moves_no_count(live):
    settings, m = live.settings, live.manifest
    before, letters = snapshot(settings), dead_letters(settings)
    with connect(settings, "reader") as conn, conn.cursor() as cur:
        resume_point = ledger.latest_offsets(cur, live.options.pipeline)
    metrics_before = job_metrics(settings)

    out = shopstream(
        settings,
        "replay",
        "--from",
        f"{live.since:%Y-%m-%dT%H:%M:%S}",
        "--to",
        f"{live.until:%Y-%m-%dT%H:%M:%S.%f}",
        "--pipeline",
        live.options.pipeline,
        "--master",
        "local[2]",
        "--driver-memory",
        "1g",
    )
    assert f"replayed {m.produced:,} records" in out.stdout and "0 new rows" in out.stdout, out.stdout

    batches, read, stored, duplicates, quarantined, replayed = replay_ledger(
        settings, f"{live.options.pipeline}-replay"
    )
    quarantine_expected = sum(m.to_dict()["quality"].values())
    assert read == m.produced, "every record of the range was read"
    assert (stored, quarantined) == (0, 0), "nothing was stored or quarantined twice"
    assert duplicates == m.produced - quarantine_expected, "each valid record replayed counts as a duplicate"
    assert replayed == batches > 0, "the ledger marks every batch a replay"
    assert snapshot(settings) == before, "facts, quarantine and KPIs are as they were"
    assert dead_letters(settings) == letters, "no dead letter was published again"
    with connect(settings, "reader") as conn, conn.cursor() as cur:
        assert ledger.latest_offsets(cur, live.options.pipeline) == resume_point, "the live resume point stayed"
    after = job_metrics(settings)
    for name in ("shopstream_quality_records_total", "shopstream_sink_duplicates_total"):
        assert after.get(name) == metrics_before.get(name), name


def test_a_replay_from_earliest_into_an_empty_database_rebuilds_it(live):
    original = snapshot(live.settings)
    empty = own_database(live.settings, f"{live.settings.postgres_db}_rebuild")
    try:
        shopstream(
            empty,
            "replay",
            "--from",
            "earliest",
            "--to",
            f"{live.until:%Y-%m-%dT%H:%M:%S.%f}",
            "--pipeline",
            "rebuild",
            "--master",
            "local[2]",
            "--driver-memory",
            "1g",
        )
        rebuilt = snapshot(empty)
    finally:
        drop_database(empty, empty.postgres_db)
    for part, rows in original.items():
        assert rebuilt[part] == rows, f"{part} differs after the rebuild"
    assert len(original["clickstream_events"]) > 0 and len(original["quarantine"]) > 0


def test_a_reset_by_hand_is_noticed_kept_and_replayed_with_from_group_offsets(live):
    settings, pipeline = live.settings, live.options.pipeline
    before, letters = snapshot(settings), dead_letters(settings)
    reset = subprocess.run(
        tool_command(
            settings,
            "consumer-groups",
            [
                "--group",
                pipeline,
                *[x for t in live.topics for x in ("--topic", t)],
                "--reset-offsets",
                "--to-earliest",
                "--execute",
            ],
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert reset.returncode == 0, reset.stderr
    earliest = group_offsets(settings, pipeline, live.topics)

    # The job goes on from its checkpoint; its next commits notice the reset and leave the group alone.
    producers.run(settings, ProduceOptions(rate=0, count=200, faults=NO_FAULTS, duplicate_ratio=0))
    PipelineRun(settings, live.stream).drain()
    wait_for(
        lambda: job_metrics(settings).get("shopstream_stream_group_reset_pending") == 1,
        30,
        "the job to report the reset",
    )
    assert group_offsets(settings, pipeline, live.topics) == earliest, "the reset was not overwritten"
    assert "was reset by hand" in live.stream.log_file.read_text(errors="replace")[-200_000:]
    stored_now = scalar(settings, "SELECT count(*) FROM clickstream_events") + scalar(
        settings, "SELECT count(*) FROM orders"
    )
    assert live.stream.stop() == 0

    # Restarted from the group: everything is read again, nothing is stored or published twice.
    again = StreamProcess(settings, live.options.model_copy(update={"from_group_offsets": True}))
    again.start()
    read = live.manifest.produced + 200
    duplicates = read - sum(live.manifest.to_dict()["quality"].values())
    try:
        PipelineRun(settings, again).drain()
        metrics = wait_for(
            lambda: (m := job_metrics(settings)).get("shopstream_sink_duplicates_total") == duplicates and m,
            30,
            "the job's duplicates counter to count every valid record read again",
        )
    finally:
        assert again.stop() == 0
    assert (
        scalar(settings, f"SELECT sum(records_in) FROM sink_ledger WHERE pipeline = '{again.pipeline_key()}'") == read
    ), "the job read from the earliest offsets"
    assert (
        scalar(settings, "SELECT count(*) FROM clickstream_events") + scalar(settings, "SELECT count(*) FROM orders")
        == stored_now
    )
    assert snapshot(settings)["quarantine"] == before["quarantine"]
    assert dead_letters(settings) == letters
    assert scalar(settings, f"SELECT bool_and(replay) FROM sink_ledger WHERE pipeline = '{again.pipeline_key()}'")
    assert metrics.get("shopstream_quality_records_total") == 0, "replayed records move no quality count"
