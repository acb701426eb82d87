"""Load the generator's pools into the customers and products dimension tables."""

from __future__ import annotations

import io

from core.database import connect
from core.settings import Settings
from producers.options import ProduceOptions
from producers.pools import build_pools

UPSERT = {
    "customers": (
        "CREATE TEMP TABLE stage_customers (LIKE customers) ON COMMIT DROP",
        "COPY stage_customers FROM STDIN WITH (FORMAT csv)",
        "INSERT INTO customers SELECT * FROM stage_customers ON CONFLICT (customer_id) DO UPDATE SET "
        "country = EXCLUDED.country, currency = EXCLUDED.currency, device = EXCLUDED.device",
    ),
    "products": (
        "CREATE TEMP TABLE stage_products (LIKE products) ON COMMIT DROP",
        "COPY stage_products FROM STDIN WITH (FORMAT csv)",
        "INSERT INTO products SELECT * FROM stage_products ON CONFLICT (product_id) DO UPDATE SET "
        "name = EXCLUDED.name, category = EXCLUDED.category, price = EXCLUDED.price",
    ),
}


def load_dimensions(settings: Settings, options: ProduceOptions) -> dict[str, int]:
    pools = build_pools(options.seed, options.customers, options.products)
    rows = {
        "customers": [f"{c.customer_id},{c.country},{c.currency},{c.device}" for c in pools.customers],
        "products": [f'{p.product_id},"{p.name}",{p.category},{p.price}' for p in pools.products],
    }
    with connect(settings, "writer") as conn, conn.cursor() as cur:
        for table, (stage, copy, upsert) in UPSERT.items():
            cur.execute(stage)
            cur.copy_expert(copy, io.StringIO("\n".join(rows[table]) + "\n"))
            cur.execute(upsert)
    conn.close()
    return {table: len(r) for table, r in rows.items()}
