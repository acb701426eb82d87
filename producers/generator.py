"""Shopping sessions that follow a funnel, interleaved into one event stream.

A session lands on a page, views products, maybe searches, maybe fills a cart (and
takes something out again), maybe checks out, and maybe orders exactly what is in its
cart. Many sessions run at once, so their events interleave as on a real shop.

Everything random comes from generators seeded by ``seed`` (content) and ``seed`` +
``run_id`` (event ids), so the same seed and run id give the same events; only
``event_time`` follows the clock, because it marks when the event was generated. A resumed
producer replays the clock's readings (:meth:`EventGenerator.replay`) to make again, byte for
byte, the events a killed run already put in Kafka.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from producers import faults
from producers.options import ProduceOptions
from producers.pools import CAMPAIGNS, PAYMENT_METHODS, REFERRERS, Pools, build_pools
from schemas.quality import CATEGORIES, LATE_MIN_S

TAX_RATES = {"USD": 0.07, "GBP": 0.20, "EUR": 0.19, "CAD": 0.13, "AUD": 0.10, "JPY": 0.10, "SEK": 0.25, "PLN": 0.23}


@dataclass(slots=True)
class GeneratedEvent:
    family: str  # "clickstream" or "orders"
    key: str  # Kafka key: the session id, so a session stays in order
    record: dict
    version: int  # schema version to write with
    category: str  # "valid", "duplicate" or a quarantine category
    rule: str = ""  # the broken rule, for a quarantine category
    late: bool = False
    generated_us: int = 0  # the clock's reading it was made at (0 for a duplicate, which reuses a record)
    event_us: int = 0  # its event time as made, before any fault broke the record (µs)


class _Session:
    __slots__ = ("campaign", "cart", "customer", "session_id", "steps")

    def __init__(self, session_id: str, customer, campaign: str | None):
        self.session_id = session_id
        self.customer = customer
        self.campaign = campaign
        self.steps: deque = deque()
        self.cart: dict = {}


class EventGenerator:
    def __init__(self, options: ProduceOptions, pools: Pools | None = None, clock: Callable[[], float] = time.time):
        self.o = options
        self.pools = pools or build_pools(options.seed, options.customers, options.products)
        self.clock = clock
        self.rng = random.Random(options.seed)
        self.id_rng = random.Random(f"{options.seed}:{options.run_id or uuid.uuid4().hex}")
        self.fault_rng = random.Random(options.seed + 1)
        ratios = options.faults.as_dict()
        self._fault_thresholds: list[tuple[float, str]] = []
        acc = 0.0
        for category in CATEGORIES:
            acc += ratios[category]
            self._fault_thresholds.append((acc, category))
        self._fault_total = acc
        self._recent_valid: deque[GeneratedEvent] = deque(maxlen=512)
        self._sessions = [self._new_session() for _ in range(options.sessions)]

    # Ids --------------------------------------------------------------------------
    def _uuid(self) -> str:
        h = f"{self.id_rng.getrandbits(128) | (1 << 127):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"

    # Sessions ---------------------------------------------------------------------
    def _new_session(self) -> _Session:
        rng, pools, o = self.rng, self.pools, self.o
        session = _Session(self._uuid(), rng.choice(pools.customers), rng.choice(CAMPAIGNS))
        steps = session.steps
        steps.append(("page_view", rng.choice(pools.pages)))
        for _ in range(min(int(rng.expovariate(1 / 3)) + 1, 12)):
            steps.append(("search", None) if rng.random() < 0.25 else ("product_view", rng.choice(pools.products)))
        if rng.random() < o.cart_rate:
            viewed = list(dict.fromkeys(p for kind, p in steps if kind == "product_view")) or [
                rng.choice(pools.products)
            ]
            added = rng.sample(viewed, min(len(viewed), rng.randint(1, 3)))
            for product in added:
                steps.append(("add_to_cart", product))
            if len(added) > 1 and rng.random() < 0.15:  # the cart keeps at least one line
                steps.append(("remove_from_cart", None))
            if rng.random() < o.checkout_rate:
                steps.append(("checkout_started", None))
                if rng.random() < o.purchase_rate:
                    steps.append(("purchase", None))
        return session

    # Events -----------------------------------------------------------------------
    def __iter__(self) -> Iterator[GeneratedEvent]:
        return self

    def __next__(self) -> GeneratedEvent:
        return self.replay(None)

    def replay(self, generated_us: int | None) -> GeneratedEvent:
        """The next event, made as if the clock read ``generated_us`` (None: read the clock). Everything else
        is drawn from the seeded generators, so a replayed reading gives back the same event."""
        rng = self.rng
        if self._recent_valid and rng.random() < self.o.duplicate_ratio:
            original = self._recent_valid[rng.randrange(len(self._recent_valid))]
            return GeneratedEvent(
                original.family,
                original.key,
                original.record,
                original.version,
                "duplicate",
                event_us=original.event_us,
            )
        index = rng.randrange(len(self._sessions))
        session = self._sessions[index]
        kind, arg = session.steps.popleft()
        if not session.steps:
            self._sessions[index] = self._new_session()
        now_us = int(self.clock() * 1_000_000) if generated_us is None else generated_us
        generated = now_us
        late = bool(self.o.late_ratio) and rng.random() < self.o.late_ratio
        if late:
            now_us -= int(rng.uniform(LATE_MIN_S, max(LATE_MIN_S, self.o.late_max_s)) * 1_000_000)
        event = self._order(session, now_us) if kind == "purchase" else self._click(session, kind, arg, now_us)
        event.late, event.generated_us, event.event_us = late, generated, now_us
        self._maybe_break(event)
        if event.category == "valid" and self.o.duplicate_ratio:
            self._recent_valid.append(event)
        return event

    def _click(self, s: _Session, kind: str, product, now_us: int) -> GeneratedEvent:
        c = s.customer
        record = {
            "event_id": self._uuid(),
            "event_time": now_us,
            "event_type": kind,
            "customer_id": c.customer_id,
            "session_id": s.session_id,
            "page_url": None,
            "referrer": None,
            "product_id": None,
            "category": None,
            "price": None,
            "quantity": None,
            "currency": None,
            "search_query": None,
            "device": c.device,
            "user_agent": c.user_agent,
            "country": c.country,
            "campaign": s.campaign,
        }
        if kind == "page_view":
            record["page_url"] = product
            record["referrer"] = self.rng.choice(REFERRERS)
        elif kind == "search":
            record["search_query"] = self.rng.choice(self.pools.search_terms)
            record["page_url"] = "/search"
        elif kind == "checkout_started":
            record["page_url"] = "/checkout"
        else:
            if kind == "remove_from_cart":
                product = s.cart.pop(self.rng.choice(list(s.cart)))[0]
            quantity = 1 if kind == "product_view" else self.rng.choices((1, 2, 3, 4), (70, 18, 8, 4))[0]
            if kind == "add_to_cart":
                s.cart[product.product_id] = (product, quantity)
            elif kind == "remove_from_cart":
                quantity = 1
            record.update(
                page_url=product.url,
                product_id=product.product_id,
                category=product.category,
                price=product.price,
                quantity=quantity,
                currency=c.currency,
            )
        version = 2 if self.rng.random() < self.o.v2_ratio else 1
        return GeneratedEvent("clickstream", s.session_id, record, version, "valid")

    def _order(self, s: _Session, now_us: int) -> GeneratedEvent:
        c = s.customer
        lines = [
            {
                "product_id": p.product_id,
                "category": p.category,
                "quantity": q,
                "unit_price": p.price,
                "line_total": round(q * p.price, 2),
            }
            for p, q in s.cart.values()
        ]
        subtotal = round(sum(li["line_total"] for li in lines), 2)
        shipping = 0.0 if subtotal >= 50 else 4.99
        tax = round(subtotal * TAX_RATES[c.currency], 2)
        record = {
            "event_id": self._uuid(),
            "event_time": now_us,
            "order_id": f"O{self._uuid()[:23]}",
            "customer_id": c.customer_id,
            "session_id": s.session_id,
            "currency": c.currency,
            "line_items": lines,
            "subtotal": subtotal,
            "shipping": shipping,
            "tax": tax,
            "total": round(subtotal + shipping + tax, 2),
            "payment_method": self.rng.choice(PAYMENT_METHODS),
            "country": c.country,
            "device": c.device,
        }
        return GeneratedEvent("orders", s.session_id, record, 1, "valid")

    def _maybe_break(self, event: GeneratedEvent) -> None:
        if not self._fault_total:
            return
        u = self.fault_rng.random()
        if u >= self._fault_total:
            return
        category = next(cat for threshold, cat in self._fault_thresholds if u < threshold)
        has_product = event.record.get("product_id") is not None or event.family == "orders"
        rule = self.fault_rng.choice(faults.applicable_rules(category, event.family, has_product))
        if category != "schema":
            faults.break_record(rule, event.record, self.fault_rng)
        event.category, event.rule = category, rule
