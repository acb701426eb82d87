-- The stream job's lease (issue 29): one row per pipeline, held by the one driver that may run the query. Its
-- epoch is a fencing token: a driver takes the lease over by raising it, and every batch transaction reads it
-- (FOR SHARE) just before its ledger row and aborts when it is no longer its own. A standby driver waits for the
-- row to go stale (renewed_at), to be released, or for its holder's process to be gone.

CREATE TABLE stream_lease (
    pipeline        text        PRIMARY KEY,
    epoch           bigint      NOT NULL,
    holder          text        NOT NULL,   -- host:pid of the driver that holds it
    checkpoint      text        NOT NULL,   -- the checkpoint folder its query writes
    acquired_at     timestamptz NOT NULL DEFAULT now(),
    renewed_at      timestamptz NOT NULL DEFAULT now(),  -- -infinity: released
    lag_records     bigint,                 -- what waited in Kafka at the holder's last look (null: not known)
    last_commit_at  timestamptz             -- the holder's last committed batch
);
