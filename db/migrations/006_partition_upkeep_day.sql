-- The partition upkeep takes the day it works from, so it can be run (and tested) for
-- any "today" instead of only the server's clock. ensure_daily_partitions() keeps its
-- signature and now delegates with the server's UTC date. (002 stays as applied:
-- migrations only add.)

CREATE FUNCTION ensure_daily_partitions_on(today date, days_ahead integer DEFAULT 7, days_back integer DEFAULT 2,
                                           retention_days integer DEFAULT 30)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    parent text;
    day date;
    part text;
    created integer := 0;
    old record;
BEGIN
    IF today IS NULL THEN
        RAISE EXCEPTION 'ensure_daily_partitions_on needs the day it works from';
    END IF;
    FOREACH parent IN ARRAY ARRAY['clickstream_events', 'orders', 'order_lines'] LOOP
        FOR day IN SELECT generate_series(today - days_back, today + days_ahead, '1 day')::date LOOP
            part := format('%s_%s', parent, to_char(day, 'YYYYMMDD'));
            IF to_regclass(part) IS NULL THEN
                -- Rows of that day already in the default partition would block the new
                -- partition; move them in the same transaction. Bounds are explicit UTC
                -- instants, whatever the session's TimeZone.
                EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS)', part, parent);
                EXECUTE format(
                    'WITH moved AS (DELETE FROM %I WHERE event_time >= %L::timestamptz AND event_time < %L::timestamptz RETURNING *) '
                    'INSERT INTO %I SELECT * FROM moved',
                    parent || '_default', day::text || ' 00:00+00', (day + 1)::text || ' 00:00+00', part);
                EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                               parent, part, day::text || ' 00:00+00', (day + 1)::text || ' 00:00+00');
                created := created + 1;
            END IF;
        END LOOP;
        FOR old IN
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = parent::regclass AND c.relname ~ ('^' || parent || '_\d{8}$')
              AND to_date(right(c.relname, 8), 'YYYYMMDD') < today - retention_days
        LOOP
            EXECUTE format('DROP TABLE %I', old.relname);
        END LOOP;
    END LOOP;
    RETURN created;
END $$;

CREATE OR REPLACE FUNCTION ensure_daily_partitions(days_ahead integer DEFAULT 7, days_back integer DEFAULT 2,
                                                   retention_days integer DEFAULT 30)
RETURNS integer LANGUAGE sql AS $$
    SELECT ensure_daily_partitions_on((now() AT TIME ZONE 'UTC')::date, days_ahead, days_back, retention_days)
$$;
