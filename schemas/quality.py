"""The data-quality contract: categories, rules, the families they apply to and their limits.

Defined once here. The generator injects every rule (producers.faults), the validator
implements every rule (streaming.validation), and the summary and report count by these
categories; tests check that the three agree. The seed report's four categories, checked
in this order: the first rule that fires names the record's category and rule.
"""

from __future__ import annotations

CATEGORIES = ("schema", "data_type", "completeness", "business_rules")
FAMILIES = ("clickstream", "orders")

#: {category: {family: rules}}, each category's rules in the order the validator checks them.
#: The data-type rules: the same for both families.
DATA_TYPE_RULES = (
    "malformed_event_id",
    "timestamp_out_of_range",
    "malformed_currency",
    "negative_quantity",
    "amount_out_of_range",
    "field_too_long",
)

RULES: dict[str, dict[str, tuple[str, ...]]] = {
    "schema": {
        "clickstream": ("not_confluent_framing", "unknown_schema_id", "undecodable_avro"),
        "orders": ("not_confluent_framing", "unknown_schema_id", "undecodable_avro"),
    },
    "data_type": {
        "clickstream": DATA_TYPE_RULES,
        "orders": DATA_TYPE_RULES,
    },
    "completeness": {
        "clickstream": ("missing_customer_id", "missing_session_id", "missing_product_id", "missing_product_fields"),
        "orders": ("missing_customer_id", "missing_session_id", "order_without_lines", "missing_order_fields"),
    },
    "business_rules": {
        "clickstream": ("non_positive_price", "quantity_over_limit", "future_event_time"),
        "orders": ("non_positive_price", "quantity_over_limit", "future_event_time", "order_total_mismatch"),
    },
}

#: Clickstream events that carry a product (price, quantity, currency, category).
PRODUCT_EVENTS = ("product_view", "add_to_cart", "remove_from_cart")

#: Clickstream rules that only apply to product events.
PRODUCT_RULES = frozenset(
    {
        "malformed_currency",
        "negative_quantity",
        "amount_out_of_range",
        "missing_product_id",
        "missing_product_fields",
        "non_positive_price",
        "quantity_over_limit",
    }
)

QUANTITY_LIMIT = 100  # business rule: units of one product in one line, at most
MAX_AMOUNT = 1_000_000_000.0  # data type: any amount fits numeric(12, 2) with room
MIN_EVENT_TIME_US = 946_684_800_000_000  # data type: 2000-01-01T00:00Z; anything older is a broken timestamp
MIN_EVENT_TIME = "2000-01-01 00:00:00+00"  # the same instant, for SQL
FUTURE_TOLERANCE_S = 300  # business rule: event_time up to 5 min after Kafka's is clock skew
COUNTRY_CODE_LENGTH = 2  # data type: ISO 3166 alpha-2


def all_rules() -> set[tuple[str, str, str]]:
    """Every (category, family, rule) of the contract."""
    return {(c, f, r) for c, fams in RULES.items() for f, rules in fams.items() for r in rules}


def category_of(rule: str) -> str:
    return next(c for c, fams in RULES.items() if any(rule in rules for rules in fams.values()))


#: The least lateness the generator injects (s). A stored event whose event_time lags its own send
#: (the produced_at header) by this much was made late on purpose: the reports show that lag as its
#: own figure and leave such events out of stage latency, which it would otherwise swamp.
LATE_MIN_S = 1.0
