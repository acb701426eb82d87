"""Data-quality rules as Spark SQL expressions: the contract of schemas.quality, implemented.

Each rule is a boolean Column that is true when the record is *broken*. Rules are
checked in order (schema, data_type, completeness, business_rules) and the first one
that fires names the record's category and rule: each record lands in exactly one
place. The fact tables' column types rely on these rules (a malformed currency would
not fit char(3)), so a record that passes always inserts.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from schemas.quality import (
    COUNTRY_CODE_LENGTH,
    FUTURE_TOLERANCE_S,
    MAX_AMOUNT,
    MIN_EVENT_TIME,
    PRODUCT_EVENTS,
    QUANTITY_LIMIT,
)

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


@dataclass(frozen=True)
class Rule:
    category: str
    name: str
    family: str  # "clickstream", "orders" or "any"
    broken: Column  # true when the record breaks the rule
    message: Column


#: The column that with_line_totals adds: struct(sum of line_total, whether a line's total is not quantity x price).
LINE_TOTALS = "line_totals"


def rules(rec: str = "rec", quantity_limit: int = QUANTITY_LIMIT) -> list[Rule]:
    """All record-level rules, in precedence order, over the decoded record column ``rec``; ``quantity_limit`` is
    the business rule's limit (a stream option: relaxing it and re-driving that rule's dead letters stores them).
    The orders' rules read ``LINE_TOTALS`` (see with_line_totals)."""

    def _c(field: str) -> Column:
        return F.col(f"{rec}.{field}")

    return _rules(_c, quantity_limit)


def with_line_totals(df: DataFrame, rec: str = "order") -> DataFrame:
    """``df`` with LINE_TOTALS over the lines of ``rec``: the one check that needs a lambda, in a step of its own.

    A higher-order function cannot be code-generated, and in an operator it keeps the whole operator (here: every
    other rule and the sink's CSV) out of whole-stage code generation. Spark keeps this narrow step apart (the
    next step reads the column twice, and the optimizer does not repeat an expensive expression), so only it
    runs interpreted. Measured with `shopstream bench transform` (issue 14)."""
    totals = F.aggregate(
        F.col(f"{rec}.line_items"),
        F.struct(F.lit(0.0).alias("sum"), F.lit(False).alias("mismatch")),
        lambda acc, li: F.struct(
            (acc.sum + li.line_total).alias("sum"),
            (acc.mismatch | (F.abs(li.line_total - li.quantity * li.unit_price) > 0.01)).alias("mismatch"),
        ),
    )
    return df.withColumn(LINE_TOTALS, totals)


def _lines(_c, field: str) -> Column:
    """One field of every line of an order, as an array (no lambda: see with_line_totals)."""
    return _c(f"line_items.{field}")


def _any_null(values: Column) -> Column:
    """Whether an array holds a null (ascending sort puts nulls first)."""
    return (F.size(values) > 0) & F.get(F.sort_array(values), 0).isNull()


def _any_not_finite(values: Column) -> Column:
    """Whether an array of amounts holds a NaN or one beyond MAX_AMOUNT (array_max ranks NaN above any number)."""
    return F.isnan(F.array_max(values)) | (F.array_max(values) > MAX_AMOUNT) | (F.array_min(values) < -MAX_AMOUNT)


def _blank(col: Column) -> Column:
    return col.isNull() | (F.trim(col) == "")


def _money_bad(col: Column) -> Column:
    return col.isNotNull() & (F.isnan(col) | (F.abs(col) > MAX_AMOUNT))


def _rules(_c, quantity_limit: int) -> list[Rule]:
    et = _c("event_time")
    msg = lambda *parts: F.concat(*[p if isinstance(p, Column) else F.lit(p) for p in parts])  # noqa: E731
    is_product = _c("event_type").isin(*PRODUCT_EVENTS)
    return [
        # data_type: values that cannot be what their field says
        Rule(
            "data_type",
            "malformed_event_id",
            "any",
            ~_c("event_id").rlike(UUID_PATTERN),
            msg("event_id '", _c("event_id"), "' is not a UUID"),
        ),
        Rule(
            "data_type",
            "timestamp_out_of_range",
            "any",
            et < F.lit(MIN_EVENT_TIME).cast("timestamp"),
            msg("event_time ", et.cast("string"), " is before 2000-01-01"),
        ),
        Rule(
            "data_type",
            "malformed_currency",
            "any",
            _c("currency").isNotNull() & ~_c("currency").rlike("^[A-Z]{3}$"),
            msg("currency '", _c("currency"), "' is not an ISO 4217 code"),
        ),
        Rule(
            "data_type",
            "negative_quantity",
            "clickstream",
            _c("quantity") < 0,
            msg("quantity ", _c("quantity").cast("string"), " is negative"),
        ),
        Rule(
            "data_type",
            "negative_quantity",
            "orders",
            F.array_min(_lines(_c, "quantity")) < 0,
            msg("an order line has a negative quantity"),
        ),
        Rule(
            "data_type",
            "amount_out_of_range",
            "clickstream",
            _money_bad(_c("price")),
            msg("price ", _c("price").cast("string"), " is not a finite amount"),
        ),
        Rule(
            "data_type",
            "amount_out_of_range",
            "orders",
            _money_bad(_c("total"))
            | _money_bad(_c("subtotal"))
            | _money_bad(_c("shipping"))
            | _money_bad(_c("tax"))
            | _any_not_finite(_lines(_c, "unit_price"))
            | _any_not_finite(_lines(_c, "line_total")),
            msg("an order amount is not a finite amount"),
        ),
        Rule(
            "data_type",
            "field_too_long",
            "any",
            F.length(_c("country")) > COUNTRY_CODE_LENGTH,
            msg("country '", _c("country"), "' is not an ISO 3166 alpha-2 code"),
        ),
        # completeness: required fields
        Rule("completeness", "missing_customer_id", "any", _blank(_c("customer_id")), msg("customer_id is missing")),
        Rule("completeness", "missing_session_id", "any", _blank(_c("session_id")), msg("session_id is missing")),
        Rule(
            "completeness",
            "missing_product_id",
            "clickstream",
            is_product & _blank(_c("product_id")),
            msg(_c("event_type"), " has no product_id"),
        ),
        Rule(
            "completeness",
            "missing_product_fields",
            "clickstream",
            is_product
            & (_blank(_c("category")) | _c("price").isNull() | _c("quantity").isNull() | _c("currency").isNull()),
            msg(_c("event_type"), " lacks category, price, quantity or currency"),
        ),
        Rule(
            "completeness",
            "order_without_lines",
            "orders",
            F.coalesce(F.size(_c("line_items")), F.lit(0)) <= 0,
            msg("order ", _c("order_id"), " has no line items"),
        ),
        Rule(
            "completeness",
            "missing_order_fields",
            "orders",
            _c("currency").isNull()
            | _c("subtotal").isNull()
            | _c("shipping").isNull()
            | _c("tax").isNull()
            | _c("total").isNull()
            | reduce(
                operator.or_,
                [_any_null(_lines(_c, f)) for f in ("product_id", "category", "quantity", "unit_price", "line_total")],
            ),
            msg("order ", _c("order_id"), " lacks a currency, an amount or a line field"),
        ),
        # business_rules: plausible values that the business does not accept
        Rule(
            "business_rules",
            "non_positive_price",
            "clickstream",
            _c("price") <= 0,
            msg("price ", _c("price").cast("string"), " is not positive"),
        ),
        Rule(
            "business_rules",
            "non_positive_price",
            "orders",
            F.array_min(_lines(_c, "unit_price")) <= 0,
            msg("an order line has a price that is not positive"),
        ),
        Rule(
            "business_rules",
            "quantity_over_limit",
            "clickstream",
            _c("quantity") > quantity_limit,
            msg("quantity ", _c("quantity").cast("string"), f" is above the limit of {quantity_limit}"),
        ),
        Rule(
            "business_rules",
            "quantity_over_limit",
            "orders",
            F.array_max(_lines(_c, "quantity")) > quantity_limit,
            msg(f"an order line has a quantity above the limit of {quantity_limit}"),
        ),
        Rule(
            "business_rules",
            "future_event_time",
            "any",
            et > F.col("kafka_time") + F.expr(f"INTERVAL {FUTURE_TOLERANCE_S} SECONDS"),
            msg("event_time ", et.cast("string"), f" is more than {FUTURE_TOLERANCE_S} s after it reached Kafka"),
        ),
        Rule(
            "business_rules",
            "order_total_mismatch",
            "orders",
            (F.abs(_c("subtotal") - F.col(f"{LINE_TOTALS}.sum")) > 0.01)
            | (F.abs(_c("total") - (_c("subtotal") + _c("shipping") + _c("tax"))) > 0.01)
            | F.col(f"{LINE_TOTALS}.mismatch"),
            msg("order ", _c("order_id"), " total ", _c("total").cast("string"), " does not add up from its lines"),
        ),
    ]


def failure_column(family: str, rec: str = "rec", quantity_limit: int = QUANTITY_LIMIT) -> Column:
    """struct(category, rule, message) of the first rule ``rec`` breaks, or null when it is valid."""
    chain = None
    for rule in rules(rec, quantity_limit):
        if rule.family not in ("any", family):
            continue
        value = F.struct(
            F.lit(rule.category).alias("category"), F.lit(rule.name).alias("rule"), rule.message.alias("message")
        )
        # A rule whose inputs are null does not fire; completeness rules catch missing values.
        cond = F.coalesce(rule.broken, F.lit(False))
        chain = F.when(cond, value) if chain is None else chain.when(cond, value)
    if chain is None:
        raise ValueError(f"no data-quality rule applies to {family!r}")
    return chain


def schema_failure(rec: str = "rec") -> Column:
    """The schema category, from framing and decoding facts computed by streaming.decode."""

    def fail(rule: str, message: Column) -> Column:
        return F.struct(F.lit("schema").alias("category"), F.lit(rule).alias("rule"), message.alias("message"))

    return (
        F.when(~F.col("framed"), fail("not_confluent_framing", F.lit("message does not start with magic byte 0")))
        .when(
            ~F.col("known_schema"),
            fail(
                "unknown_schema_id",
                F.concat(
                    F.lit("schema id "),
                    F.col("schema_id").cast("string"),
                    F.lit(" is not registered for "),
                    F.col("topic"),
                ),
            ),
        )
        # PERMISSIVE from_avro yields a struct of nulls, not a null, for a body that
        # does not decode; event_id is non-nullable in every schema, so it tells.
        .when(
            F.col(rec).isNull() | F.col(f"{rec}.event_id").isNull(),
            fail("undecodable_avro", F.lit("Avro body does not decode with its schema")),
        )
    )
