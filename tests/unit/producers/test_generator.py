from collections import Counter, defaultdict

import pytest

from schemas import quality
from tests.fixtures.generator import ALL_FAULTS, make_generator

N = 30_000


def take(gen, n=N):
    return [next(gen) for _ in range(n)]


def test_the_same_seed_and_run_id_give_the_same_events():
    a = [
        (e.family, e.key, e.record, e.version, e.category, e.rule)
        for e in take(make_generator(faults=ALL_FAULTS), 3000)
    ]
    b = [
        (e.family, e.key, e.record, e.version, e.category, e.rule)
        for e in take(make_generator(faults=ALL_FAULTS), 3000)
    ]
    assert a == b


def test_replaying_the_clock_readings_gives_the_same_events_from_another_clock():
    """What `produce --resume` relies on: the clock is the only input besides the seeds."""
    first = take(make_generator(faults=ALL_FAULTS, duplicate_ratio=0.05, late_ratio=0.1), 3000)
    again = make_generator(faults=ALL_FAULTS, duplicate_ratio=0.05, late_ratio=0.1)
    again.clock = lambda: 0.0  # a different clock, never read for a replayed event
    replayed = [again.replay(e.generated_us) for e in first]
    assert [(e.record, e.category, e.rule, e.late) for e in replayed] == [
        (e.record, e.category, e.rule, e.late) for e in first
    ]
    assert any(e.late for e in first) and any(e.category == "duplicate" for e in first)


def test_another_seed_or_run_id_gives_other_events():
    base = [e.record["event_id"] for e in take(make_generator(), 100)]
    assert base != [e.record["event_id"] for e in take(make_generator(seed=8), 100)]
    assert base != [e.record["event_id"] for e in take(make_generator(run_id="other"), 100)]


def test_event_ids_are_unique():
    events = [e for e in take(make_generator()) if e.category != "duplicate"]
    ids = [e.record["event_id"] for e in events]
    assert len(set(ids)) == len(ids)


def test_the_funnel_holds_no_order_without_a_cart_and_lines_match_the_cart():
    carts: dict[str, Counter] = defaultdict(Counter)
    stages: dict[str, list[str]] = defaultdict(list)
    orders = 0
    for e in take(make_generator()):
        r = e.record
        if e.family == "clickstream":
            stages[e.key].append(r["event_type"])
            if r["event_type"] == "add_to_cart":
                carts[e.key][r["product_id"]] += r["quantity"]
            elif r["event_type"] == "remove_from_cart":
                del carts[e.key][r["product_id"]]
        else:
            orders += 1
            assert "add_to_cart" in stages[e.key] and "checkout_started" in stages[e.key]
            assert r["line_items"], "a valid order has lines"
            assert {li["product_id"]: li["quantity"] for li in r["line_items"]} == dict(carts[e.key])
            for li in r["line_items"]:
                assert li["line_total"] == pytest.approx(li["quantity"] * li["unit_price"], abs=0.01)
            assert r["subtotal"] == pytest.approx(sum(li["line_total"] for li in r["line_items"]), abs=0.01)
            assert r["total"] == pytest.approx(r["subtotal"] + r["shipping"] + r["tax"], abs=0.01)
    assert orders > 100


def test_conversion_rates_shape_the_funnel():
    def order_share(**rates):
        events = take(make_generator(**rates), 10_000)
        return sum(e.family == "orders" for e in events) / len(events)

    assert order_share(cart_rate=0.9, checkout_rate=0.9, purchase_rate=0.9) > 3 * order_share(cart_rate=0.2)
    assert order_share(purchase_rate=0.0) == 0


def test_fault_ratios_are_met_within_tolerance():
    events = take(make_generator(faults=ALL_FAULTS, duplicate_ratio=0.02))
    counts = Counter(e.category for e in events)
    for category, ratio in ALL_FAULTS.as_dict().items():
        assert counts[category] / N == pytest.approx(ratio, rel=0.15), category
    assert counts["duplicate"] / N == pytest.approx(0.02, rel=0.15)


def test_every_rule_fires_and_only_on_families_it_applies_to():
    events = take(make_generator(faults=ALL_FAULTS))
    seen = Counter((e.category, e.family, e.rule) for e in events if e.rule)
    for category, families in quality.RULES.items():
        for family, rules in families.items():
            for rule in rules:
                assert seen[(category, family, rule)] > 0, (category, family, rule)


def test_a_duplicate_repeats_a_valid_event_exactly():
    events = take(make_generator(duplicate_ratio=0.05))
    originals = {e.record["event_id"]: e for e in events if e.category == "valid"}
    duplicates = [e for e in events if e.category == "duplicate"]
    assert duplicates
    for dup in duplicates:
        original = originals[dup.record["event_id"]]
        assert (dup.record, dup.key, dup.version) == (original.record, original.key, original.version)


def test_late_events_lag_behind_the_clock_by_at_most_the_limit():
    gen = make_generator(late_ratio=0.2, late_max_s=30)
    events = take(gen, 5000)
    late = [e for e in events if e.late]
    assert len(late) / len(events) == pytest.approx(0.2, rel=0.15)
    for i, e in enumerate(events):  # the test clock reads start + i ms at event i
        now_us = (gen.clock.start + i / 1000) * 1e6
        lag_s = (now_us - e.record["event_time"]) / 1e6
        assert (1.0 - 1e-3 <= lag_s <= 30.0 + 1e-3) if e.late else abs(lag_s) < 1e-3


def test_v2_ratio_controls_schema_versions():
    clicks = [e for e in take(make_generator(v2_ratio=0.3), 10_000) if e.family == "clickstream"]
    assert sum(e.version == 2 for e in clicks) / len(clicks) == pytest.approx(0.3, rel=0.1)
