"""Every rule against the generator's faults: Spark decodes and validates what fastavro
wrote, and each record must land where the generator says it broke it."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid

import pytest

from infra.orchestration.samples import catalogue_schemas, kafka_source_rows
from producers.options import FaultRatios
from schemas import quality
from streaming import sql
from streaming.decode import WriterSchemas
from streaming.job import KAFKA_ROW_SCHEMA, kafka_rows_frame
from streaming.transform import sink_rows
from tests.fixtures.generator import SESSION_START, make_generator

TOPICS = {"clickstream": "t.clickstream", "orders": "t.orders"}


def writer_schemas() -> WriterSchemas:
    return catalogue_schemas(TOPICS)


def kafka_rows(spark, events):
    def appended(e):  # at event time, except for the rules about event_time itself: at the clock's start
        broken_time = e.rule in ("future_event_time", "timestamp_out_of_range")
        return dt.datetime.fromtimestamp(SESSION_START if broken_time else e.record["event_time"] / 1e6, dt.UTC)

    return kafka_rows_frame(spark, kafka_source_rows(writer_schemas(), events, appended))


def test_the_warm_up_frame_has_the_kafka_layout_and_needs_no_python_on_executors(spark):
    """On a cluster, a Python RDD would start Python workers on the executors, whose Python (3.10 in
    apache/spark:4.2.0) is not the driver's: PYTHON_VERSION_MISMATCH. Arrow batches are decoded by the JVM."""
    rows = kafka_source_rows(writer_schemas(), [next(make_generator()) for _ in range(50)])
    frame = kafka_rows_frame(spark, rows)
    assert frame.schema == spark.createDataFrame([], KAFKA_ROW_SCHEMA).schema
    lineage = frame._jdf.queryExecution().toRdd().toDebugString()
    assert "PythonRDD" not in lineage, lineage
    assert "PythonRDD" in spark.createDataFrame(rows, KAFKA_ROW_SCHEMA)._jdf.queryExecution().toRdd().toDebugString()
    assert [tuple(r) for r in frame.collect()] == [
        tuple(r) for r in spark.createDataFrame(rows, KAFKA_ROW_SCHEMA).collect()
    ]


@pytest.fixture(scope="module")
def outcome(spark):
    # Most sessions end in an order, so every orders rule is drawn too.
    gen = make_generator(
        faults=FaultRatios(schema=0.06, data_type=0.12, completeness=0.10, business_rules=0.10),
        sessions=40,
        v2_ratio=0.5,
        cart_rate=0.9,
        checkout_rate=0.9,
        purchase_rate=0.9,
    )
    events = [next(gen) for _ in range(6000)]
    table = sink_rows(kafka_rows(spark, events), writer_schemas()).toArrow().to_pylist()
    return events, table


def test_every_record_lands_exactly_once_in_facts_or_quarantine(outcome):
    events, rows = outcome
    assert sum(r["kind"] in ("click", "order", "quarantine") for r in rows) == len(events)


def test_each_broken_record_is_quarantined_under_its_own_rule(outcome):
    events, rows = outcome
    quarantined = {
        int(q[2]): (q[4], q[5])
        for q in (next(csv.reader(io.StringIO(r["line"]))) for r in rows if r["kind"] == "quarantine")
    }
    expected = {i: (e.category, e.rule) for i, e in enumerate(events) if e.category not in ("valid", "duplicate")}
    assert quarantined == expected
    injected = {(e.category, e.family, e.rule) for e in events if e.category not in ("valid", "duplicate")}
    assert injected == quality.all_rules(), f"rules never injected: {quality.all_rules() - injected}"


def test_the_validator_implements_exactly_the_contract_in_its_order(spark):  # a Column needs a live session
    from streaming.validation import rules

    implemented = {}
    for rule in rules():
        for family in quality.FAMILIES if rule.family == "any" else (rule.family,):
            implemented.setdefault((rule.category, family), []).append(rule.name)
    contract = {(c, f): list(names) for c, fams in quality.RULES.items() for f, names in fams.items() if c != "schema"}
    assert implemented == contract


def test_valid_events_become_fact_rows_with_their_lines(outcome):
    events, rows = outcome
    valid = [e for e in events if e.category in ("valid", "duplicate")]
    clicks = [r for r in rows if r["kind"] == "click"]
    orders = [r for r in rows if r["kind"] == "order"]
    lines = [r for r in rows if r["kind"] == "line"]
    assert len(clicks) == sum(e.family == "clickstream" for e in valid)
    assert len(orders) == sum(e.family == "orders" for e in valid)
    assert len(lines) == sum(len(e.record["line_items"]) for e in valid if e.family == "orders")
    versions = {next(csv.reader(io.StringIO(r["line"])))[17] for r in clicks}
    assert versions == {"1", "2"}, "v1 and v2 writers both decode"


def test_each_order_line_row_is_its_line_item_in_order(outcome):
    """Line rows are formatted after the explode from the item at their position (no lambda in the plan)."""
    events, rows = outcome
    expected = sorted(
        (
            e.record["event_id"],
            n,
            e.record["order_id"],
            li["product_id"],
            li["category"],
            li["quantity"],
            li["unit_price"],
            li["line_total"],
        )
        for e in events
        if e.family == "orders" and e.category in ("valid", "duplicate")
        for n, li in enumerate(e.record["line_items"], 1)
    )
    got = sorted(
        (f[1], int(f[2]), f[3], f[4], f[5], int(f[6]), float(f[7]), float(f[8]))
        for f in (next(csv.reader(io.StringIO(r["line"]))) for r in rows if r["kind"] == "line")
    )
    assert got == expected
    assert all(r["event_time_us"] is None and r["kafka_time_us"] for r in rows if r["kind"] == "line")


def test_csv_round_trips_awkward_strings(spark):
    gen = make_generator(sessions=5)
    event = next(e for e in (next(gen) for _ in range(50)) if e.family == "clickstream")
    event.record["search_query"] = 'shoes, "red"\\ size 9'
    event.record["event_type"] = "search"
    rows = sink_rows(kafka_rows(spark, [event]), writer_schemas()).toArrow().to_pylist()
    fields = next(csv.reader(io.StringIO(rows[0]["line"])))
    assert fields[12] == 'shoes, "red"\\ size 9'


def test_produced_at_header_is_read_and_a_repeated_header_key_does_not_fail_the_batch(spark):
    from pyspark.sql import functions as F

    gen = make_generator(faults=FaultRatios(schema=0, data_type=0, completeness=0, business_rules=0), sessions=5)
    event = next(e for e in (next(gen) for _ in range(50)) if e.family == "clickstream")
    header = lambda k, v: F.struct(F.lit(k).alias("key"), F.lit(v).alias("value"))  # noqa: E731
    df = kafka_rows(spark, [event]).withColumn(
        "headers", F.array(header("produced_at", b"1000000"), header("trace", b"x"), header("produced_at", b"2000000"))
    )
    rows = sink_rows(df, writer_schemas()).toArrow().to_pylist()
    assert [r["kind"] for r in rows] == ["click"]
    fields = dict(zip(column_names(sql.CLICK_COLUMNS), next(csv.reader(io.StringIO(rows[0]["line"]))), strict=True))
    assert fields["produced_at"].startswith("1970-01-01 00:00:02")  # the last of the repeated key
    assert fields["extra_fields"] == ""  # our own schemas: no field without a column


def column_names(columns: str) -> list[str]:
    return [c.strip() for c in columns.split(",")]


def test_each_line_has_the_columns_the_sink_copies_in_that_order(spark):
    """The CSV that Spark formats and the COPY column lists of streaming.sql agree, field for field."""
    gen = make_generator(faults=FaultRatios(schema=0, data_type=0, completeness=0, business_rules=0), sessions=5)
    events = [next(gen) for _ in range(60)]
    rows = sink_rows(kafka_rows(spark, events), writer_schemas()).toArrow().to_pylist()
    expected = {"click": column_names(sql.CLICK_COLUMNS), "order": column_names(sql.ORDER_COLUMNS)}
    for row in rows:
        if row["kind"] in expected:
            fields = dict(zip(expected[row["kind"]], next(csv.reader(io.StringIO(row["line"]))), strict=True))
            assert fields["kafka_topic"].endswith(("clickstream", "orders")), fields
            uuid.UUID(fields["event_id"])
    assert {r["kind"] for r in rows} >= {"click", "order"}


def test_bench_transform_times_the_transformation_on_generated_batches(spark):
    from infra.bench import transform

    (small, large) = transform.run([200, 600], reps=2, spark=spark)
    assert (small.events, large.events) == (200, 600)
    assert large.output_rows > small.output_rows >= 200  # order lines add rows
    assert small.median_s > 0 and small.reps == 2
