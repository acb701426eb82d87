-- Live schema evolution (issue 16): a newer, compatible schema version that a producer
-- registers while the job runs may carry fields the fact tables have no column for.
-- They are kept, as JSON, until a migration gives them a column of their own: nothing a
-- producer sends is dropped. NULL for events that carry no such field. Adding a
-- nullable column without a default only changes the catalogue (no table rewrite), and
-- the partitions inherit it.

ALTER TABLE clickstream_events ADD COLUMN extra_fields jsonb;
ALTER TABLE orders ADD COLUMN extra_fields jsonb;
