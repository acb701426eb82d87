-- Data tiering (issue 16): no day partition is ever dropped without an archive.
-- The upkeep no longer drops partitions past retention in SQL; `shopstream archive`
-- (db/archive.py, which the upkeep calls) exports each day older than the hot window to
-- Parquet, verifies the export by row count and checksum, and only then drops it.
-- ensure_daily_partitions_on keeps its signature (retention_days is now unused), and
-- archived_days records every archived day, where its file is and whether it was
-- restored. (006 stays as applied: migrations only add.)

CREATE TABLE archived_days (
    table_name  text        NOT NULL,
    day         date        NOT NULL,
    row_count   bigint      NOT NULL,
    checksum    text        NOT NULL,   -- count and sum of the rows' md5, as db/archive.py computes it
    path        text        NOT NULL,   -- the Parquet file, relative to the archive folder
    bytes       bigint      NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now(),
    removed_at  timestamptz,            -- the partition dropped, or the rows deleted
    restored_at timestamptz,            -- `shopstream archive restore` attached it again
    PRIMARY KEY (table_name, day, path)   -- a late row of an archived day goes to a file of its own
);

CREATE OR REPLACE FUNCTION ensure_daily_partitions_on(today date, days_ahead integer DEFAULT 7, days_back integer DEFAULT 2,
                                           retention_days integer DEFAULT 30)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    parent text;
    day date;
    part text;
    created integer := 0;
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
    END LOOP;
    RETURN created;
END $$;
