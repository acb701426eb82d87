-- Dimensions, loaded from the generator's pools.
CREATE TABLE customers (
    customer_id text PRIMARY KEY,
    country     char(2) NOT NULL,
    currency    char(3) NOT NULL,
    device      text    NOT NULL
);
CREATE TABLE products (
    product_id text PRIMARY KEY,
    name       text NOT NULL,
    category   text NOT NULL,
    price      numeric(12, 2) NOT NULL
);
CREATE INDEX products_category_idx ON products (category);

-- Hourly and daily rollups; the unique indexes allow REFRESH ... CONCURRENTLY.
CREATE MATERIALIZED VIEW revenue_hourly AS
SELECT date_trunc('hour', window_start) AS hour, category, currency,
       sum(revenue) AS revenue, sum(units) AS units, sum(orders) AS orders
FROM kpi_revenue_minute GROUP BY 1, 2, 3;
CREATE UNIQUE INDEX revenue_hourly_key ON revenue_hourly (hour, category, currency);

CREATE MATERIALIZED VIEW funnel_daily AS
SELECT date_trunc('day', window_start) AS day, sum(page_views) AS page_views,
       sum(product_views) AS product_views, sum(add_to_carts) AS add_to_carts,
       sum(checkouts) AS checkouts, sum(purchases) AS purchases
FROM kpi_funnel_minute GROUP BY 1;
CREATE UNIQUE INDEX funnel_daily_key ON funnel_daily (day);

CREATE TABLE rollup_refreshes (
    view_name    text PRIMARY KEY,
    refreshed_at timestamptz NOT NULL
);

-- The views were populated just now.
INSERT INTO rollup_refreshes VALUES ('revenue_hourly', now()), ('funnel_daily', now());
