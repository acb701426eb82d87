"""Bad data on purpose: each rule breaks a valid event in one known way.

The categories are the seed report's. A broken event must fail exactly its own rule
first: the validator checks schema, then data_type, then completeness, then
business_rules, so a fault never also trips an earlier category.
"""

from __future__ import annotations

import random

CATEGORIES = ("schema", "data_type", "completeness", "business_rules")

# Rules per category and the event families they apply to.
RULES: dict[str, dict[str, tuple[str, ...]]] = {
    "schema": {
        "clickstream": ("not_confluent_framing", "unknown_schema_id", "undecodable_avro"),
        "orders": ("not_confluent_framing", "unknown_schema_id", "undecodable_avro"),
    },
    "data_type": {
        "clickstream": ("timestamp_out_of_range", "malformed_currency", "negative_quantity"),
        "orders": ("timestamp_out_of_range", "malformed_currency", "negative_quantity"),
    },
    "completeness": {
        "clickstream": ("missing_customer_id", "missing_session_id", "missing_product_id"),
        "orders": ("missing_customer_id", "missing_session_id", "order_without_lines"),
    },
    "business_rules": {
        "clickstream": ("non_positive_price", "quantity_over_limit", "future_event_time"),
        "orders": ("quantity_over_limit", "future_event_time", "order_total_mismatch"),
    },
}

# Rules that only make sense for events carrying a product (price, quantity, currency).
PRODUCT_RULES = {"malformed_currency", "negative_quantity", "missing_product_id", "non_positive_price",
                 "quantity_over_limit"}

QUANTITY_LIMIT = 100                     # the validator's business rule
FUTURE_TOLERANCE_US = 5 * 60 * 1_000_000  # event_time up to 5 min ahead is clock skew, not a fault
MIN_EVENT_TIME_US = 946_684_800_000_000   # 2000-01-01: anything older is a broken timestamp
BAD_CURRENCIES = ("US$", "euro", "12", "EURO", "", "gbp")
UNKNOWN_SCHEMA_ID = 2_000_000_000


def applicable_rules(category: str, family: str, has_product: bool) -> tuple[str, ...]:
    rules = RULES[category][family]
    if family == "clickstream" and not has_product:
        rules = tuple(r for r in rules if r not in PRODUCT_RULES)
    return rules


def break_record(rule: str, record: dict, rng: random.Random) -> None:
    """Apply a record-level rule in place. Schema rules act on the bytes (see break_bytes)."""
    if rule == "timestamp_out_of_range":
        record["event_time"] = rng.choice((-2_208_988_800_000_000, 0, 86_400_000_000))  # 1900, 1970
    elif rule == "malformed_currency":
        record["currency"] = rng.choice(BAD_CURRENCIES)
    elif rule == "negative_quantity":
        if "line_items" in record:
            rng.choice(record["line_items"])["quantity"] = -rng.randint(1, 5)
        else:
            record["quantity"] = -rng.randint(1, 5)
    elif rule in ("missing_customer_id", "missing_session_id", "missing_product_id"):
        record[rule.removeprefix("missing_")] = None
    elif rule == "order_without_lines":
        record["line_items"] = []
    elif rule == "non_positive_price":
        record["price"] = rng.choice((0.0, -record["price"]))
    elif rule == "quantity_over_limit":
        if "line_items" in record:
            line = rng.choice(record["line_items"])
            extra = QUANTITY_LIMIT + rng.randint(1, 400) - line["quantity"]
            line["quantity"] += extra
            line["line_total"] = round(line["quantity"] * line["unit_price"], 2)
            _retotal(record)
        else:
            record["quantity"] = QUANTITY_LIMIT + rng.randint(1, 400)
    elif rule == "future_event_time":
        record["event_time"] += rng.randint(1, 30) * 86_400_000_000
    elif rule == "order_total_mismatch":
        record["total"] = round(record["total"] + rng.choice((-1, 1)) * rng.uniform(1, 50), 2)
    else:
        raise KeyError(rule)


def _retotal(order: dict) -> None:
    tax_rate = order["tax"] / order["subtotal"] if order["subtotal"] else 0.0
    order["subtotal"] = round(sum(li["line_total"] for li in order["line_items"]), 2)
    order["tax"] = round(order["subtotal"] * tax_rate, 2)
    order["total"] = round(order["subtotal"] + order["shipping"] + order["tax"], 2)


def break_bytes(rule: str, payload: bytes, rng: random.Random) -> bytes:
    """Apply a schema rule to a Confluent-framed message."""
    if rule == "not_confluent_framing":
        return bytes([rng.randint(1, 255)]) + payload[1:]
    if rule == "unknown_schema_id":
        return b"\x00" + UNKNOWN_SCHEMA_ID.to_bytes(4, "big") + payload[5:]
    if rule == "undecodable_avro":
        # Valid framing and schema id, body that is not Avro for that schema: a string
        # length prefix pointing far beyond the end of the message.
        return payload[:5] + b"\xfe\xff\xff\xff\x0f" + bytes(rng.getrandbits(8) for _ in range(6))
    raise KeyError(rule)
