"""Faker pools, built once per run: customers, products, search terms.

Events are sampled from these pools, never made one Faker call per event: Faker is
slow (tens of microseconds a call), sampling a list is not.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from faker import Faker

# Category -> (price low, price high), roughly what a general online shop sells.
CATEGORIES: dict[str, tuple[float, float]] = {
    "electronics": (19.0, 1499.0),
    "books": (4.0, 60.0),
    "fashion": (9.0, 250.0),
    "home_garden": (5.0, 400.0),
    "beauty": (3.0, 120.0),
    "sports": (8.0, 600.0),
    "toys": (4.0, 150.0),
    "grocery": (1.0, 40.0),
    "automotive": (6.0, 500.0),
    "pet_supplies": (3.0, 90.0),
    "office": (2.0, 300.0),
    "jewelry": (15.0, 2000.0),
}
COUNTRY_CURRENCY = {
    "US": "USD",
    "GB": "GBP",
    "DE": "EUR",
    "FR": "EUR",
    "NL": "EUR",
    "ES": "EUR",
    "IT": "EUR",
    "CA": "CAD",
    "AU": "AUD",
    "JP": "JPY",
    "SE": "SEK",
    "PL": "PLN",
}
DEVICES = ("desktop", "mobile", "tablet")
DEVICE_WEIGHTS = (0.42, 0.50, 0.08)
PAYMENT_METHODS = ("card", "paypal", "apple_pay", "google_pay", "klarna", "bank_transfer")
REFERRERS = (
    None,
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://www.facebook.com/",
    "https://www.instagram.com/",
    "https://newsletter.shop.example/",
)
CAMPAIGNS = (None, "black_friday", "winter_sale", "newsletter_w48", "retargeting", "brand_search")


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: str
    country: str
    currency: str
    device: str
    user_agent: str


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    name: str
    category: str
    price: float
    url: str


@dataclass(frozen=True)
class Pools:
    customers: tuple[Customer, ...]
    products: tuple[Product, ...]
    search_terms: tuple[str, ...]
    pages: tuple[str, ...]


def build_pools(seed: int, customers: int, products: int) -> Pools:
    fake = Faker()
    fake.seed_instance(seed)
    rng = random.Random(seed)
    countries = tuple(COUNTRY_CURRENCY)
    agents = {d: [fake.chrome() if d == "desktop" else fake.user_agent() for _ in range(40)] for d in DEVICES}
    customer_pool = []
    for i in range(customers):
        device = rng.choices(DEVICES, DEVICE_WEIGHTS)[0]
        country = rng.choice(countries)
        customer_pool.append(
            Customer(
                f"C{seed % 1000:03d}{i:07d}", country, COUNTRY_CURRENCY[country], device, rng.choice(agents[device])
            )
        )
    categories = tuple(CATEGORIES)
    product_pool = []
    for i in range(products):
        category = categories[i % len(categories)]
        low, high = CATEGORIES[category]
        name = f"{fake.color_name()} {fake.word()} {category.split('_')[0]}".title()
        product_id = f"P{i:06d}"
        slug = name.lower().replace(" ", "-")
        product_pool.append(
            Product(product_id, name, category, round(rng.uniform(low, high), 2), f"/p/{product_id}/{slug}")
        )
    terms = tuple({fake.word() for _ in range(400)} | {p.name.split()[1].lower() for p in product_pool[:200]})
    pages = ("/", "/deals", "/new", "/account", "/help", *(f"/c/{c}" for c in categories))
    return Pools(tuple(customer_pool), tuple(product_pool), tuple(sorted(terms)), pages)
