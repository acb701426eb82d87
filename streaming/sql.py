"""Named SQL of the PostgreSQL sink. Nothing here is assembled from input."""

LEDGER_HAS_BATCH = "SELECT 1 FROM sink_ledger WHERE pipeline = %s AND batch_id = %s"

# The fact tables' columns in the order streaming.transform formats them (all but batch_id,
# which the insert adds). Named, not `s.*`: a column added by a later migration (extra_fields,
# 007) comes after batch_id in the table.
CLICK_COLUMNS = (
    "event_time, event_id, event_type, customer_id, session_id, page_url, referrer, product_id, "
    "category, price, quantity, currency, search_query, device, user_agent, country, campaign, "
    "schema_version, kafka_topic, kafka_partition, kafka_offset, kafka_time, produced_at, extra_fields"
)
ORDER_COLUMNS = (
    "event_time, event_id, order_id, customer_id, session_id, currency, subtotal, shipping, tax, total, "
    "line_count, payment_method, country, device, kafka_topic, kafka_partition, kafka_offset, "
    "kafka_time, produced_at, extra_fields"
)

# Staging tables live for the connection and are emptied at each commit. They are the
# target tables less batch_id, which the insert adds (Spark's plan stays the same for
# every batch that way, so it is built once).
CREATE_STAGING = """
CREATE TEMP TABLE stage_click (LIKE clickstream_events) ON COMMIT DELETE ROWS;
ALTER TABLE stage_click DROP COLUMN batch_id;
CREATE TEMP TABLE stage_order (LIKE orders) ON COMMIT DELETE ROWS;
ALTER TABLE stage_order DROP COLUMN batch_id;
CREATE TEMP TABLE stage_line (LIKE order_lines) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE stage_quarantine (LIKE quarantine INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
ALTER TABLE stage_quarantine DROP COLUMN batch_id;
CREATE TEMP TABLE stage_redrive (redrive_of text, source_topic text, source_partition integer, source_offset bigint,
                                 outcome text, category text, rule text) ON COMMIT DELETE ROWS;
"""

COPY = {
    "click": f"COPY stage_click ({CLICK_COLUMNS}) FROM STDIN WITH (FORMAT csv)",
    "order": f"COPY stage_order ({ORDER_COLUMNS}) FROM STDIN WITH (FORMAT csv)",
    "line": "COPY stage_line FROM STDIN WITH (FORMAT csv)",
    "quarantine": (
        "COPY stage_quarantine (source_topic, source_partition, source_offset, kafka_time, category, "
        "rule, message, event_id, raw) FROM STDIN WITH (FORMAT csv)"
    ),
    "redrive": "COPY stage_redrive FROM STDIN WITH (FORMAT csv)",
}

# Per source partition, the rows staged that stand for a record read (a click, an order, a quarantined record, a
# re-driven one's outcome; an order's lines are not counted), with their lowest and highest offsets: the sink checks
# them against what the driver handed over and the batch's offset range before it commits.
STAGED_BY_PARTITION = """
SELECT topic, part, count(*), min(off), max(off) FROM (
    SELECT kafka_topic, kafka_partition, kafka_offset FROM stage_click
    UNION ALL SELECT kafka_topic, kafka_partition, kafka_offset FROM stage_order
    UNION ALL SELECT source_topic, source_partition, source_offset FROM stage_quarantine
    UNION ALL SELECT source_topic, source_partition, source_offset FROM stage_redrive
) staged (topic, part, off) GROUP BY 1, 2
"""

# Facts first; KPIs from exactly the rows this statement inserted (a duplicate, which
# conflicts, adds nothing). Data-modifying CTEs always run to completion.
INSERT_CLICKS = f"""
WITH inserted AS (
    INSERT INTO clickstream_events ({CLICK_COLUMNS}, batch_id)
    SELECT {CLICK_COLUMNS}, %(batch_id)s FROM stage_click ON CONFLICT DO NOTHING
    RETURNING event_time, event_type, session_id, kafka_time
), funnel AS (
    INSERT INTO kpi_funnel_minute AS k (window_start, page_views, product_views, searches, add_to_carts,
                                        remove_from_carts, checkouts)
    SELECT date_trunc('minute', event_time),
           count(*) FILTER (WHERE event_type = 'page_view'), count(*) FILTER (WHERE event_type = 'product_view'),
           count(*) FILTER (WHERE event_type = 'search'), count(*) FILTER (WHERE event_type = 'add_to_cart'),
           count(*) FILTER (WHERE event_type = 'remove_from_cart'),
           count(*) FILTER (WHERE event_type = 'checkout_started')
    FROM inserted GROUP BY 1
    ON CONFLICT (window_start) DO UPDATE SET
        page_views = k.page_views + EXCLUDED.page_views, product_views = k.product_views + EXCLUDED.product_views,
        searches = k.searches + EXCLUDED.searches, add_to_carts = k.add_to_carts + EXCLUDED.add_to_carts,
        remove_from_carts = k.remove_from_carts + EXCLUDED.remove_from_carts,
        checkouts = k.checkouts + EXCLUDED.checkouts
), new_pairs AS (
    INSERT INTO session_minutes
    SELECT DISTINCT date_trunc('minute', event_time), session_id FROM inserted
    ON CONFLICT DO NOTHING RETURNING window_start
), active AS (
    INSERT INTO kpi_active_sessions_minute AS a
    SELECT window_start, count(*) FROM new_pairs GROUP BY 1
    ON CONFLICT (window_start) DO UPDATE SET active_sessions = a.active_sessions + EXCLUDED.active_sessions
)
SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM stage_click),
       (SELECT count(*) FROM inserted WHERE kafka_time - event_time > %(late_after)s)
"""

INSERT_ORDERS = f"""
WITH inserted AS (
    INSERT INTO orders ({ORDER_COLUMNS}, batch_id)
    SELECT {ORDER_COLUMNS}, %(batch_id)s FROM stage_order ON CONFLICT DO NOTHING
    RETURNING event_time, event_id, currency, kafka_time
), lines AS (
    INSERT INTO order_lines
    SELECT DISTINCT ON (l.event_time, l.event_id, l.line_no) l.*
    FROM stage_line l JOIN inserted i USING (event_time, event_id)
    ON CONFLICT DO NOTHING
    RETURNING event_time, event_id, category, quantity, line_total
), revenue AS (
    INSERT INTO kpi_revenue_minute AS r
    SELECT date_trunc('minute', l.event_time), l.category, i.currency, sum(l.line_total), sum(l.quantity),
           count(DISTINCT l.event_id)
    FROM lines l JOIN inserted i USING (event_time, event_id) GROUP BY 1, 2, 3
    ON CONFLICT (window_start, category, currency) DO UPDATE SET
        revenue = r.revenue + EXCLUDED.revenue, units = r.units + EXCLUDED.units, orders = r.orders + EXCLUDED.orders
), purchases AS (
    INSERT INTO kpi_funnel_minute AS k (window_start, purchases)
    SELECT date_trunc('minute', event_time), count(*) FROM inserted GROUP BY 1
    ON CONFLICT (window_start) DO UPDATE SET purchases = k.purchases + EXCLUDED.purchases
)
SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM stage_order),
       (SELECT count(*) FROM inserted WHERE kafka_time - event_time > %(late_after)s)
"""

# A record quarantined before (a replay) conflicts on its source coordinates and is not returned: only the
# returned ones are new, counted and sent to the dead-letter topic.
INSERT_QUARANTINE = """
INSERT INTO quarantine (source_topic, source_partition, source_offset, kafka_time, category, rule, message,
                        event_id, raw, batch_id)
SELECT source_topic, source_partition, source_offset, kafka_time, category, rule, message, event_id, raw,
       %(batch_id)s
FROM stage_quarantine ON CONFLICT DO NOTHING RETURNING source_topic, source_partition, source_offset
"""

# Re-driven dead letters: the first quarantine row of each is resolved (it passed: its facts were inserted by this
# transaction) or has the attempt counted (it failed again). An attempt already recorded (the same coordinates: a
# replayed batch) changes nothing. Returns (resolved, failed again, failed attempts in the batch).
APPLY_REDRIVES = """
WITH r AS (
    SELECT split_part(redrive_of, '/', 1) AS topic, split_part(redrive_of, '/', 2)::integer AS part,
           split_part(redrive_of, '/', 3)::bigint AS off,
           source_topic || '/' || source_partition || '/' || source_offset AS attempt, outcome, rule
    FROM stage_redrive
), touched AS (
    UPDATE quarantine q SET
        resolved_at = CASE WHEN r.outcome = 'stored' THEN coalesce(q.resolved_at, clock_timestamp()) ELSE q.resolved_at END,
        resolved_by = CASE WHEN r.outcome = 'stored' THEN coalesce(q.resolved_by, r.attempt) ELSE q.resolved_by END,
        redrive_attempts = q.redrive_attempts + 1, last_redrive = r.attempt,
        last_redrive_rule = CASE WHEN r.outcome = 'failed' THEN r.rule END
    FROM r
    WHERE (q.source_topic, q.source_partition, q.source_offset) = (r.topic, r.part, r.off)
      AND q.last_redrive IS DISTINCT FROM r.attempt
    RETURNING r.outcome
)
SELECT count(*) FILTER (WHERE outcome = 'stored'), count(*) FILTER (WHERE outcome = 'failed'),
       (SELECT count(*) FROM stage_redrive WHERE outcome = 'failed')
FROM touched
"""

INSERT_LEDGER = """
INSERT INTO sink_ledger (pipeline, batch_id, end_offsets, records_in, stored, duplicates, quarantined, late,
                         picked_up_at, started_at, replay, committed_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, clock_timestamp())
"""
