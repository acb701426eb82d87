-- Fact tables: range-partitioned by day on event_time, unique on (event_time, event_id)
-- so a re-sent event or a replayed batch inserts nothing (ON CONFLICT DO NOTHING).
-- Each row keeps where it came from (topic, partition, offset, Kafka timestamp,
-- produced_at header) and the sink batch that wrote it.

CREATE TABLE clickstream_events (
    event_time      timestamptz NOT NULL,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    customer_id     text        NOT NULL,
    session_id      text        NOT NULL,
    page_url        text,
    referrer        text,
    product_id      text,
    category        text,
    price           numeric(12, 2),
    quantity        integer,
    currency        char(3),
    search_query    text,
    device          text,
    user_agent      text,
    country         text,
    campaign        text,
    schema_version  smallint    NOT NULL,
    kafka_topic     text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    kafka_time      timestamptz NOT NULL,
    produced_at     timestamptz,
    batch_id        bigint      NOT NULL,
    PRIMARY KEY (event_time, event_id)
) PARTITION BY RANGE (event_time);

CREATE TABLE orders (
    event_time      timestamptz NOT NULL,
    event_id        uuid        NOT NULL,
    order_id        text        NOT NULL,
    customer_id     text        NOT NULL,
    session_id      text        NOT NULL,
    currency        char(3)     NOT NULL,
    subtotal        numeric(12, 2) NOT NULL,
    shipping        numeric(12, 2) NOT NULL,
    tax             numeric(12, 2) NOT NULL,
    total           numeric(12, 2) NOT NULL,
    line_count      integer     NOT NULL,
    payment_method  text,
    country         text,
    device          text,
    kafka_topic     text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    kafka_time      timestamptz NOT NULL,
    produced_at     timestamptz,
    batch_id        bigint      NOT NULL,
    PRIMARY KEY (event_time, event_id)
) PARTITION BY RANGE (event_time);

CREATE TABLE order_lines (
    event_time  timestamptz NOT NULL,
    event_id    uuid        NOT NULL,   -- the order event's id
    line_no     integer     NOT NULL,
    order_id    text        NOT NULL,
    product_id  text        NOT NULL,
    category    text        NOT NULL,
    quantity    integer     NOT NULL,
    unit_price  numeric(12, 2) NOT NULL,
    line_total  numeric(12, 2) NOT NULL,
    PRIMARY KEY (event_time, event_id, line_no)
) PARTITION BY RANGE (event_time);

-- The seed's index table: event time (the primary keys lead with it), customer,
-- event type, category.
CREATE INDEX clickstream_events_customer_idx ON clickstream_events (customer_id);
CREATE INDEX clickstream_events_type_idx ON clickstream_events (event_type, event_time);
CREATE INDEX clickstream_events_category_idx ON clickstream_events (category) WHERE category IS NOT NULL;
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE INDEX order_lines_category_idx ON order_lines (category, event_time);

-- A default partition catches rows outside the created days (a stray old or far-ahead
-- timestamp that is still valid), so they are stored rather than failing the batch.
CREATE TABLE clickstream_events_default PARTITION OF clickstream_events DEFAULT;
CREATE TABLE orders_default PARTITION OF orders DEFAULT;
CREATE TABLE order_lines_default PARTITION OF order_lines DEFAULT;
