-- Every record that enters the stream ends in a fact table or here, with its reason.
CREATE TABLE quarantine (
    source_topic     text        NOT NULL,
    source_partition integer     NOT NULL,
    source_offset    bigint      NOT NULL,
    kafka_time       timestamptz NOT NULL,
    category         text        NOT NULL CHECK (category IN ('schema', 'data_type', 'completeness', 'business_rules')),
    rule             text        NOT NULL,
    message          text        NOT NULL,
    event_id         text,
    raw              bytea       NOT NULL,
    batch_id         bigint      NOT NULL,
    quarantined_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_topic, source_partition, source_offset)
);
CREATE INDEX quarantine_category_idx ON quarantine (category, rule);

-- The sink ledger: one row per committed micro-batch, written in the batch's own
-- transaction. A replayed batch finds its row and writes nothing.
CREATE TABLE sink_ledger (
    pipeline        text        NOT NULL,
    batch_id        bigint      NOT NULL,
    end_offsets     jsonb       NOT NULL,   -- {"topic": {"partition": next offset}}
    records_in      integer     NOT NULL,
    stored          integer     NOT NULL,
    duplicates      integer     NOT NULL,
    quarantined     integer     NOT NULL,
    late            integer     NOT NULL,
    picked_up_at    timestamptz NOT NULL,   -- the batch reached foreachBatch
    started_at      timestamptz NOT NULL,   -- the sink transaction began
    committed_at    timestamptz NOT NULL,
    PRIMARY KEY (pipeline, batch_id)
);
