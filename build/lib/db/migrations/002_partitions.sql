-- Daily partitions: created some days ahead, dropped after the retention period.
-- `shopstream migrate` and the sink call ensure_daily_partitions regularly.

CREATE FUNCTION ensure_daily_partitions(days_ahead integer DEFAULT 7, days_back integer DEFAULT 2,
                                        retention_days integer DEFAULT 30)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    parent text;
    day date;
    part text;
    created integer := 0;
    old record;
BEGIN
    FOREACH parent IN ARRAY ARRAY['clickstream_events', 'orders', 'order_lines'] LOOP
        FOR day IN SELECT generate_series((now() AT TIME ZONE 'UTC')::date - days_back,
                                          (now() AT TIME ZONE 'UTC')::date + days_ahead, '1 day')::date LOOP
            part := format('%s_%s', parent, to_char(day, 'YYYYMMDD'));
            IF to_regclass(part) IS NULL THEN
                -- Rows of that day already in the default partition would block the new
                -- partition; move them in the same transaction.
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
              AND to_date(right(c.relname, 8), 'YYYYMMDD') < (now() AT TIME ZONE 'UTC')::date - retention_days
        LOOP
            EXECUTE format('DROP TABLE %I', old.relname);
        END LOOP;
    END LOOP;
    RETURN created;
END $$;

SELECT ensure_daily_partitions();
