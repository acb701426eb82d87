"""One micro-batch of Kafka rows -> the sink's input, in a single pass over the batch.

Every input row becomes one or more output rows ``(kind, line, event_time_us,
kafka_time_us, topic, partition)``: ``kind`` is the staging table (click, order, line, quarantine, redrive) and
``line`` is that table's row as CSV, formatted on the JVM so the driver only has to
join strings and COPY them; ``topic`` and ``partition`` are where the record was read (the sink checks, per
partition, that it staged every record the batch read).

No expression here takes a lambda (``F.transform``, ``F.exists``, ``F.aggregate``): Spark cannot generate code for
higher-order functions, and one of them in an operator keeps that whole operator out of whole-stage code
generation. It then runs row by row through interpreted expressions, or generates its projection again in every
task of every micro-batch. The one sum over an order's lines that needs a lambda is computed in a narrow step of
its own (``streaming.validation.with_line_totals``).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from schemas.quality import QUANTITY_LIMIT
from streaming.decode import WriterSchemas, decode
from streaming.validation import failure_column, schema_failure, with_line_totals

# PostgreSQL CSV: quotes doubled (Spark's default escape is a backslash), microsecond
# UTC timestamps, unquoted empty for NULL.
CSV_OPTIONS = {"escape": '"', "timestampFormat": "yyyy-MM-dd HH:mm:ss.SSSSSSXXX", "nullValue": ""}

CLICK_FIELDS = (
    "event_time",
    "event_id",
    "event_type",
    "customer_id",
    "session_id",
    "page_url",
    "referrer",
    "product_id",
    "category",
    "price",
    "quantity",
    "currency",
    "search_query",
    "device",
    "user_agent",
    "country",
    "campaign",
)
ORDER_FIELDS = (
    "event_time",
    "event_id",
    "order_id",
    "customer_id",
    "session_id",
    "currency",
    "subtotal",
    "shipping",
    "tax",
    "total",
)
ORDER_TAIL_FIELDS = ("payment_method", "country", "device")  # after line_count in the orders table
QUARANTINE_COLUMNS = (
    "source_topic",
    "source_partition",
    "source_offset",
    "kafka_time",
    "category",
    "rule",
    "message",
    "event_id",
    "raw",
)


def _csv(*cols: Column) -> Column:
    return F.to_csv(F.struct(*[c.alias(f"c{i}") for i, c in enumerate(cols)]), CSV_OPTIONS)


def _source() -> list[Column]:
    return [F.col("topic"), F.col("partition"), F.col("offset"), F.col("kafka_time"), F.col("produced_at")]


def _extra_fields(rec: str, names: tuple[str, ...]) -> Column:
    """JSON of a newer schema version's fields that the table has no column for (null when none is set)."""
    if not names:
        return F.lit(None).cast("string")
    return F.nullif(F.to_json(F.struct(*[F.col(f"{rec}.{n}") for n in names])), F.lit("{}"))


def sink_rows(kafka_rows: DataFrame, ws: WriterSchemas, quantity_limit: int = QUANTITY_LIMIT) -> DataFrame:
    """Works on a streaming DataFrame (built once, at start) or on a batch one (tests).

    A re-driven dead letter (its ``redrive_of`` header names where it was first quarantined) also yields a
    ``redrive`` row, with its outcome; one that fails again yields only that row (its first quarantine row is
    the one that counts: no second row, no second dead letter, no loop)."""
    decoded = decode(kafka_rows, ws)
    failure = F.when(
        F.col("family") == "clickstream",
        F.coalesce(schema_failure("click"), failure_column("clickstream", "click", quantity_limit)),
    ).when(
        F.col("family") == "orders",
        F.coalesce(schema_failure("order"), failure_column("orders", "order", quantity_limit)),
    )
    click = [F.col(f"click.{f}") for f in CLICK_FIELDS]
    order = [F.col(f"order.{f}") for f in ORDER_FIELDS]
    redriven = F.col("redrive_of").isNotNull()
    failed = F.col("failure").isNotNull()
    # Each record's output rows, by kind: explode first, then format each row's CSV once, from its kind. An
    # order's lines are its rows at positions 1..n. (Formatting inside the exploded array repeated every CSV
    # in each branch that can yield it: four times the generated code.)
    kinds = (
        F.when(failed & ~redriven, F.array(F.lit("quarantine")))
        .when(failed, F.array(F.lit("redrive")))
        .when(
            F.col("family") == "clickstream",
            F.when(redriven, F.array(F.lit("click"), F.lit("redrive"))).otherwise(F.array(F.lit("click"))),
        )
        .otherwise(
            F.concat(
                F.array(F.lit("order")),
                F.array_repeat(F.lit("line"), F.size("order.line_items")),
                F.when(redriven, F.array(F.lit("redrive"))).otherwise(F.array().cast("array<string>")),
            )
        )
    )
    item = F.get(F.col("order.line_items"), F.col("position") - 1)
    event_id = F.coalesce(F.col("click.event_id"), F.col("order.event_id"))
    kind = F.col("kind")
    line = (
        F.when(
            kind == "click",
            _csv(*click, F.col("schema_version"), *_source(), _extra_fields("click", ws.extras.get("clickstream", ()))),
        )
        .when(
            kind == "order",
            _csv(
                *order,
                F.size("order.line_items"),
                *[F.col(f"order.{f}") for f in ORDER_TAIL_FIELDS],
                *_source(),
                _extra_fields("order", ws.extras.get("orders", ())),
            ),
        )
        .when(
            kind == "line",
            _csv(
                F.col("order.event_time"),
                F.col("order.event_id"),
                F.col("position"),
                F.col("order.order_id"),
                item.product_id,
                item.category,
                item.quantity,
                item.unit_price,
                item.line_total,
            ),
        )
        .when(
            kind == "quarantine",
            _csv(
                F.col("topic"),
                F.col("partition"),
                F.col("offset"),
                F.col("kafka_time"),
                F.col("failure.category"),
                F.col("failure.rule"),
                F.col("failure.message"),
                event_id,
                F.concat(F.lit("\\x"), F.lower(F.hex("value"))),
            ),
        )
        .otherwise(
            _csv(
                F.col("redrive_of"),
                F.col("topic"),
                F.col("partition"),
                F.col("offset"),
                F.when(failed, F.lit("failed")).otherwise(F.lit("stored")),
                F.col("failure.category"),
                F.col("failure.rule"),
            )
        )
    )
    event_time = F.when(kind == "click", F.col("click.event_time")).when(kind == "order", F.col("order.event_time"))
    return (
        with_line_totals(decoded)
        .withColumn("failure", failure)
        # explode_outer: every record has at least one output row, and the plain explode would make the
        # optimizer add a filter that evaluates `kinds` twice (InferFiltersFromGenerate).
        .select("*", F.posexplode_outer(kinds).alias("position", "kind"))
        .select(
            kind,
            line.alias("line"),
            F.unix_micros(event_time).alias("event_time_us"),
            F.unix_micros(F.col("kafka_time")).alias("kafka_time_us"),
            F.col("topic"),
            F.col("partition"),
        )
    )
