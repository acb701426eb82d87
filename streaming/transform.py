"""One micro-batch of Kafka rows -> the sink's input, in a single pass over the batch.

Every input row becomes one or more output rows ``(kind, line, event_time_us,
kafka_time_us)``: ``kind`` is the staging table (click, order, line, quarantine, redrive) and
``line`` is that table's row as CSV, formatted on the JVM so the driver only has to
join strings and COPY them.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from schemas.quality import QUANTITY_LIMIT
from streaming.decode import WriterSchemas, decode
from streaming.validation import failure_column, schema_failure

# PostgreSQL CSV: quotes doubled (Spark's default escape is a backslash), microsecond
# UTC timestamps, unquoted empty for NULL.
CSV_OPTIONS = {"escape": '"', "timestampFormat": "yyyy-MM-dd HH:mm:ss.SSSSSSXXX", "nullValue": ""}

CLICK_FIELDS = ("event_time", "event_id", "event_type", "customer_id", "session_id", "page_url", "referrer",
                "product_id", "category", "price", "quantity", "currency", "search_query", "device", "user_agent",
                "country", "campaign")
ORDER_FIELDS = ("event_time", "event_id", "order_id", "customer_id", "session_id", "currency", "subtotal",
                "shipping", "tax", "total")
ORDER_TAIL_FIELDS = ("payment_method", "country", "device")   # after line_count in the orders table
QUARANTINE_COLUMNS = ("source_topic", "source_partition", "source_offset", "kafka_time", "category", "rule",
                      "message", "event_id", "raw")


def _csv(*cols: Column) -> Column:
    return F.to_csv(F.struct(*[c.alias(f"c{i}") for i, c in enumerate(cols)]), CSV_OPTIONS)


def _source() -> list[Column]:
    return [F.col("topic"), F.col("partition"), F.col("offset"), F.col("kafka_time"), F.col("produced_at")]


def _out(kind: str, line: Column, event_time: Column | None) -> Column:
    micros = F.unix_micros(event_time) if event_time is not None else F.lit(None).cast("long")
    return F.struct(F.lit(kind).alias("kind"), line.alias("line"), micros.alias("event_time_us"),
                    F.unix_micros(F.col("kafka_time")).alias("kafka_time_us"))


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
    failure = (F.when(F.col("family") == "clickstream",
                      F.coalesce(schema_failure("click"), failure_column("clickstream", "click", quantity_limit)))
                .when(F.col("family") == "orders",
                      F.coalesce(schema_failure("order"), failure_column("orders", "order", quantity_limit))))
    click = [F.col(f"click.{f}") for f in CLICK_FIELDS]
    order = [F.col(f"order.{f}") for f in ORDER_FIELDS]
    click_line = _csv(*click, F.col("schema_version"), *_source(),
                      _extra_fields("click", ws.extras.get("clickstream", ())))
    order_line = _csv(*order, F.size("order.line_items"), *[F.col(f"order.{f}") for f in ORDER_TAIL_FIELDS],
                      *_source(), _extra_fields("order", ws.extras.get("orders", ())))
    line_items = F.transform(
        "order.line_items",
        lambda li, i: _out("line", _csv(F.col("order.event_time"), F.col("order.event_id"), i + 1,
                                        F.col("order.order_id"), li.product_id, li.category, li.quantity,
                                        li.unit_price, li.line_total), None))
    event_id = F.coalesce(F.col("click.event_id"), F.col("order.event_id"))
    quarantine_line = _csv(F.col("topic"), F.col("partition"), F.col("offset"), F.col("kafka_time"),
                           F.col("failure.category"), F.col("failure.rule"), F.col("failure.message"), event_id,
                           F.concat(F.lit("\\x"), F.lower(F.hex("value"))))
    redriven = F.col("redrive_of").isNotNull()

    def redrive(outcome: str) -> Column:
        return _out("redrive", _csv(F.col("redrive_of"), F.col("topic"), F.col("partition"), F.col("offset"),
                                    F.lit(outcome), F.col("failure.category"), F.col("failure.rule")), None)

    click_out = _out("click", click_line, F.col("click.event_time"))
    order_out = F.concat(F.array(_out("order", order_line, F.col("order.event_time"))), line_items)
    outputs = (F.when(F.col("failure").isNotNull() & ~redriven, F.array(_out("quarantine", quarantine_line, None)))
                .when(F.col("failure").isNotNull(), F.array(redrive("failed")))
                .when(F.col("family") == "clickstream",
                      F.when(redriven, F.array(click_out, redrive("stored"))).otherwise(F.array(click_out)))
                .otherwise(F.when(redriven, F.concat(order_out, F.array(redrive("stored")))).otherwise(order_out)))
    return (decoded.withColumn("failure", failure)
            .select(F.explode(outputs).alias("o"))
            .select("o.kind", "o.line", "o.event_time_us", "o.kafka_time_us"))
