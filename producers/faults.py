"""Bad data on purpose: each rule breaks a valid event in one known way.

The rules are the data-quality contract's (schemas.quality). A broken event must fail
exactly its own rule first: the validator checks the rules in the contract's order, so
a fault never also trips an earlier rule.
"""

from __future__ import annotations

import random

from schemas.quality import MAX_AMOUNT, PRODUCT_RULES, QUANTITY_LIMIT, RULES

BAD_CURRENCIES = ("US$", "euro", "12", "EURO", "", "gbp")
BAD_COUNTRIES = ("DEU", "Germany", "USA", "United Kingdom")
UNKNOWN_SCHEMA_ID = 2_000_000_000
#: Amounts no price can be: not a number, or beyond what numeric(12, 2) holds.
BAD_AMOUNTS = (float("nan"), MAX_AMOUNT * 1000, -MAX_AMOUNT * 1000)


def applicable_rules(category: str, family: str, has_product: bool) -> tuple[str, ...]:
    rules = RULES[category][family]
    if family == "clickstream" and not has_product:
        rules = tuple(r for r in rules if r not in PRODUCT_RULES)
    return rules


def break_record(rule: str, record: dict, rng: random.Random) -> None:
    """Apply a record-level rule in place. Schema rules act on the bytes (see break_bytes)."""
    if rule == "malformed_event_id":
        # Still unique (the accounting counts by event), but not in the 8-4-4-4-12 form.
        eid = record["event_id"]
        record["event_id"] = rng.choice((eid.replace("-", ""), "{" + eid + "}", eid[:-1], eid + "0"))
    elif rule == "timestamp_out_of_range":
        record["event_time"] = rng.choice((-2_208_988_800_000_000, 0, 86_400_000_000))  # 1900, 1970
    elif rule == "malformed_currency":
        record["currency"] = rng.choice(BAD_CURRENCIES)
    elif rule == "negative_quantity":
        if "line_items" in record:
            rng.choice(record["line_items"])["quantity"] = -rng.randint(1, 5)
        else:
            record["quantity"] = -rng.randint(1, 5)
    elif rule == "amount_out_of_range":
        if "line_items" in record:
            key = rng.choice(("subtotal", "shipping", "tax", "total"))
            record[key] = rng.choice(BAD_AMOUNTS)
        else:
            record["price"] = rng.choice(BAD_AMOUNTS)
    elif rule == "field_too_long":
        record["country"] = rng.choice(BAD_COUNTRIES)
    elif rule in ("missing_customer_id", "missing_session_id", "missing_product_id"):
        record[rule.removeprefix("missing_")] = None
    elif rule == "missing_product_fields":
        record[rng.choice(("category", "price", "quantity", "currency"))] = None
    elif rule == "missing_order_fields":
        if rng.random() < 0.5:
            record[rng.choice(("currency", "subtotal", "shipping", "tax", "total"))] = None
        else:
            line = rng.choice(record["line_items"])
            line[rng.choice(("product_id", "category", "quantity", "unit_price", "line_total"))] = None
    elif rule == "order_without_lines":
        record["line_items"] = []
    elif rule == "non_positive_price":
        if "line_items" in record:
            line = rng.choice(record["line_items"])
            line["unit_price"] = rng.choice((0.0, -line["unit_price"]))
            line["line_total"] = round(line["quantity"] * line["unit_price"], 2)
            _retotal(record)
        else:
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
