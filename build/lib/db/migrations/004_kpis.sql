-- Per-minute KPIs, maintained by the sink in the same transaction as the facts, from
-- exactly the rows that transaction inserted: so they always equal a recomputation
-- from the stored facts, late events included.

CREATE TABLE kpi_revenue_minute (
    window_start timestamptz NOT NULL,
    category     text        NOT NULL,
    currency     char(3)     NOT NULL,
    revenue      numeric(14, 2) NOT NULL,
    units        bigint      NOT NULL,
    orders       bigint      NOT NULL,   -- orders with at least one line in the category
    PRIMARY KEY (window_start, category, currency)
);

CREATE TABLE kpi_funnel_minute (
    window_start     timestamptz NOT NULL PRIMARY KEY,
    page_views       bigint NOT NULL DEFAULT 0,
    product_views    bigint NOT NULL DEFAULT 0,
    searches         bigint NOT NULL DEFAULT 0,
    add_to_carts     bigint NOT NULL DEFAULT 0,
    remove_from_carts bigint NOT NULL DEFAULT 0,
    checkouts        bigint NOT NULL DEFAULT 0,
    purchases        bigint NOT NULL DEFAULT 0
);

-- Distinct sessions per minute: the pairs table makes the count exact and idempotent.
CREATE TABLE session_minutes (
    window_start timestamptz NOT NULL,
    session_id   text        NOT NULL,
    PRIMARY KEY (window_start, session_id)
);
CREATE TABLE kpi_active_sessions_minute (
    window_start    timestamptz NOT NULL PRIMARY KEY,
    active_sessions bigint      NOT NULL
);
