-- Dead-letter re-drive (issue 16): `shopstream dead-letter redrive` sends quarantined
-- records back to their topic with a redrive_of header. A quarantine row is never
-- deleted: a record that now passes is stored and its row marked resolved; one that
-- fails again gets no second row, only its attempt counted here. last_redrive (the
-- attempt's own coordinates) makes a replayed attempt count once.

ALTER TABLE quarantine ADD COLUMN resolved_at timestamptz;
ALTER TABLE quarantine ADD COLUMN resolved_by text;              -- topic/partition/offset of the attempt that passed
ALTER TABLE quarantine ADD COLUMN redrive_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE quarantine ADD COLUMN last_redrive text;             -- topic/partition/offset of the latest attempt
ALTER TABLE quarantine ADD COLUMN last_redrive_rule text;        -- the rule it broke then (null: it passed)
