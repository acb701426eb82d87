"""The sink ledger: one row per committed micro-batch, the truth about what is stored.

The stream job writes it (streaming.sink); the exporter, `run` and the benchmarks read
the offsets it committed. These are the queries they share.
"""

from __future__ import annotations

import json

from core.kafka import Offsets, offsets_from_json

# The newest committed offsets of one checkpoint ("name:query id").
COMMITTED_OFFSETS = "SELECT end_offsets FROM sink_ledger WHERE pipeline = %s ORDER BY batch_id DESC LIMIT 1"

# The newest committed offsets of any checkpoint of this pipeline ("name"): where a job
# with a fresh checkpoint starts, instead of the beginning of the topics.
LATEST_OFFSETS = """
SELECT end_offsets FROM sink_ledger WHERE split_part(pipeline, ':', 1) = %s ORDER BY committed_at DESC LIMIT 1
"""


# The newest batch one checkpoint ("name:query id") committed: where its query resumes (streaming.checkpoint).
NEWEST_BATCH = "SELECT max(batch_id) FROM sink_ledger WHERE pipeline = %s"


def newest_batch(cur, pipeline_key: str) -> int | None:
    """The newest batch id committed by one checkpoint ("name:query id"); None when it committed none."""
    cur.execute(NEWEST_BATCH, (pipeline_key,))
    row = cur.fetchone()
    return None if row is None or row[0] is None else int(row[0])


def committed_offsets(cur, pipeline_key: str) -> Offsets:
    """{topic: {partition: next offset}} committed by one checkpoint ("name:query id")."""
    return _offsets(cur, COMMITTED_OFFSETS, pipeline_key)


def latest_offsets(cur, pipeline: str) -> Offsets:
    """{topic: {partition: next offset}} committed last by any checkpoint of ``pipeline``."""
    return _offsets(cur, LATEST_OFFSETS, pipeline)


def _offsets(cur, query: str, key: str) -> Offsets:
    cur.execute(query, (key,))
    row = cur.fetchone()
    return offsets_from_json(row[0] if row else None)


# Whether a ledger row of this pipeline ("name") ended exactly at these offsets (jsonb containment), among its
# recent rows: a consumer group found there lags behind a mirror that failed; found nowhere, it was moved by hand.
OFFSETS_SEEN = """
SELECT EXISTS (SELECT 1 FROM (SELECT end_offsets FROM sink_ledger WHERE split_part(pipeline, ':', 1) = %s
                              ORDER BY committed_at DESC LIMIT 100000) recent WHERE end_offsets @> %s::jsonb)
"""


def offsets_seen(cur, pipeline: str, offsets: Offsets) -> bool:
    cur.execute(OFFSETS_SEEN, (pipeline, json.dumps(offsets)))
    return cur.fetchone()[0]
