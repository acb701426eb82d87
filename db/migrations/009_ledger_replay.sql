-- Replays (issue 16): the ledger says which batches re-read offsets that the pipeline had
-- read before (a group reset and `stream --from-group-offsets`, or `shopstream replay`).
-- A constant default: existing rows read false, and no table rewrite.

ALTER TABLE sink_ledger ADD COLUMN replay boolean NOT NULL DEFAULT false;
