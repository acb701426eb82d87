"""The run summary (DESIGN: summary JSON), measured from Kafka, the ledger and stored rows.

A run is scoped by the Kafka offsets it produced: every (topic, partition, offset)
between the log end before and after producing. Stored rows and quarantined records
are found by those coordinates, latency comes from the timestamps each stored row
carries (event_time, produced_at header, Kafka append time) and from its ledger row
(picked up, transaction began, committed). Nothing is taken from intentions.

Stage latency is measured over on-time events only: not late on arrival (``late_s``), and
not made late on purpose by the generator (event_time at least ``LATE_MIN_S`` before its
own send). That injected lateness is reported as its own figure, never as a stage's cost.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from psycopg2.extras import execute_values

from core.database import connect
from core.kafka import Offsets
from core.metrics import STAGES
from core.settings import Settings
from schemas.quality import CATEGORIES, LATE_MIN_S

CREATE_RANGES = """
CREATE TEMP TABLE IF NOT EXISTS run_ranges (topic text, part integer, start_off bigint, end_off bigint)
ON COMMIT DELETE ROWS
"""
INSERT_RANGES = "INSERT INTO run_ranges VALUES %s"


# One row per stored event of the run, with every stage's timestamps.
def stage_latencies(facts: str) -> str:
    """(stage, ms) of every fact in the relation ``facts`` (a CTE's name): each stage's latency from the
    timestamps a stored row carries and its ledger row's. The summary and the report both use it."""
    return f"""
    SELECT 'generate' AS stage, extract(epoch FROM produced_at - event_time) * 1000 AS ms FROM {facts}
    UNION ALL SELECT 'produce', extract(epoch FROM kafka_time - produced_at) * 1000 FROM {facts}
    UNION ALL SELECT 'queue', extract(epoch FROM picked_up_at - kafka_time) * 1000 FROM {facts}
    UNION ALL SELECT 'process', extract(epoch FROM started_at - picked_up_at) * 1000 FROM {facts}
    UNION ALL SELECT 'db_write', extract(epoch FROM committed_at - started_at) * 1000 FROM {facts}
    UNION ALL SELECT 'end_to_end', extract(epoch FROM committed_at - event_time) * 1000 FROM {facts}"""


def _facts(commit: str) -> str:
    """Every stored fact in the run's offsets (run_ranges), with ``commit``: the column that leads to its commit
    time (``batch_id`` for the ledger, a stock sink's ``stored_at``), and whether it was late or made late."""
    picked = " UNION ALL ".join(
        f"""
    SELECT f.event_id, f.event_time, f.produced_at, f.kafka_time, f.{commit}
    FROM {table} f JOIN run_ranges r
      ON f.kafka_topic = r.topic AND f.kafka_partition = r.part AND f.kafka_offset >= r.start_off
     AND f.kafka_offset < r.end_off"""
        for table in ("clickstream_events", "orders")
    )
    return f"""
WITH facts AS ({picked}
), flagged AS (
    SELECT f.*, f.kafka_time - f.event_time > make_interval(secs => %(late_s)s) AS late,
           f.produced_at - f.event_time >= make_interval(secs => %(late_min_s)s) AS made_late
    FROM facts f
)"""


RUN_FACTS = f"""{_facts("batch_id")}
SELECT f.*, l.picked_up_at, l.started_at, l.committed_at
FROM flagged f LEFT JOIN sink_ledger l ON l.pipeline = %(pipeline)s AND l.batch_id = f.batch_id
"""

# The same for a benchmark peer's stock sink (infra.bench.peers.stock): no ledger, its rows' own insert time as
# the commit, read from the peer's copies of the tables (the cursor's search_path puts its schema first).
STORED_RUN_FACTS = f"""{_facts("stored_at")}
SELECT f.*, NULL::bigint AS batch_id, NULL::timestamptz AS picked_up_at, NULL::timestamptz AS started_at,
       f.stored_at AS committed_at
FROM flagged f
"""


def _summary_sql(run_facts: str) -> str:
    return f"""
WITH run AS ({run_facts}),
on_time AS (SELECT * FROM run WHERE NOT late AND NOT coalesce(made_late, false)),
stages AS ({stage_latencies("on_time")}
    UNION ALL SELECT 'kafka_to_commit', extract(epoch FROM committed_at - kafka_time) * 1000 FROM on_time
)
SELECT
    (SELECT count(*) FROM run) AS stored,
    (SELECT count(*) - count(DISTINCT event_id) FROM run) AS duplicates_in_db,
    (SELECT count(*) FROM run WHERE late) AS late,
    (SELECT json_build_object('events', count(*), 'p50', percentile_cont(0.5) WITHIN GROUP (ORDER BY lag_s),
                              'max', max(lag_s))
     FROM (SELECT extract(epoch FROM produced_at - event_time) AS lag_s FROM run WHERE made_late) m) AS made_late,
    (SELECT count(*) FROM run WHERE committed_at IS NULL) AS without_ledger,
    (SELECT extract(epoch FROM max(committed_at) - min(produced_at)) FROM run) AS span_s,
    (SELECT json_object_agg(stage, json_build_object(
        'avg', round(avg_ms::numeric, 1), 'p50', round(p50::numeric, 1), 'p95', round(p95::numeric, 1),
        'p99', round(p99::numeric, 1), 'max', round(max_ms::numeric, 1)))
     FROM (SELECT stage, avg(ms) AS avg_ms, max(ms) AS max_ms,
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
                  percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS p95,
                  percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99
           FROM stages WHERE ms IS NOT NULL GROUP BY stage) s) AS stages
"""


SUMMARY = _summary_sql(RUN_FACTS)
STORED_SUMMARY = _summary_sql(STORED_RUN_FACTS)
QUARANTINE_BY_CATEGORY = """
SELECT q.category, q.rule, count(*)
FROM quarantine q JOIN run_ranges r
  ON q.source_topic = r.topic AND q.source_partition = r.part AND q.source_offset >= r.start_off
 AND q.source_offset < r.end_off
GROUP BY 1, 2 ORDER BY 1, 2
"""

# Each stored event of the run timed from the run's first Kafka append (s): when it was appended, when committed,
# and its e2e latency (ms; NULL for a late one, which percentiles skip).
RUN_TIMES = f"""
WITH run AS ({RUN_FACTS}),
t0 AS (SELECT min(kafka_time) AS t0 FROM run),
timed AS (SELECT extract(epoch FROM kafka_time - t0)::float8 AS appended_s,
                 extract(epoch FROM committed_at - t0)::float8 AS committed_s,
                 CASE WHEN NOT late AND NOT coalesce(made_late, false)
                      THEN extract(epoch FROM committed_at - event_time) * 1000 END AS e2e_ms
          FROM run, t0)
"""

# Per second: the events appended then, those committed then, and the e2e p95 of those appended then.
TIMELINE = (
    RUN_TIMES
    + """,
appended AS (SELECT floor(appended_s)::int AS s, count(*) AS n,
                    percentile_cont(0.95) WITHIN GROUP (ORDER BY e2e_ms) AS p95_ms FROM timed GROUP BY 1),
committed AS (SELECT floor(committed_s)::int AS s, count(*) AS n FROM timed WHERE committed_s IS NOT NULL GROUP BY 1)
SELECT coalesce(a.s, c.s) AS s, coalesce(a.n, 0), coalesce(c.n, 0), a.p95_ms
FROM appended a FULL JOIN committed c ON a.s = c.s ORDER BY 1
"""
)

# Per window of append time (window i starts at starts[i] s; the last one runs to the end): events, e2e p95, p99.
WINDOWS = (
    RUN_TIMES
    + """
SELECT width_bucket(appended_s, %(starts)s::float8[]) AS w, count(*),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY e2e_ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY e2e_ms)
FROM timed GROUP BY 1 ORDER BY 1
"""
)

STAGE_ORDER = STAGES


@dataclass
class RunScope:
    start: Offsets  # {topic: {partition: offset}} before producing
    end: Offsets  # ... after producing
    pipeline: str  # the ledger's "name:query id"
    accounting: str = "ledger"  # or "stored": a benchmark peer's stock sink (STORED_RUN_FACTS)

    @property
    def produced(self) -> int:
        return sum(end - self.start.get(t, {}).get(p, 0) for t, parts in self.end.items() for p, end in parts.items())


@contextlib.contextmanager
def _run_cursor(settings: Settings, scope: RunScope) -> Iterator:
    """A reader's cursor, in a transaction whose ``run_ranges`` hold the run's offsets."""
    ranges = [
        (t, int(p), scope.start.get(t, {}).get(p, 0), end) for t, parts in scope.end.items() for p, end in parts.items()
    ]
    conn = connect(settings, "reader")
    try:
        with conn, conn.cursor() as cur:
            if scope.accounting == "stored":  # the peer's copies of the tables, then ours
                cur.execute("SET LOCAL search_path = peer, public")
            cur.execute(CREATE_RANGES)
            execute_values(cur, INSERT_RANGES, ranges)
            yield cur
    finally:
        conn.close()


@dataclass(frozen=True)
class RunSummary:
    """What a run stored, measured; its JSON (``to_dict``) keeps these names, the summary file's fields."""

    produced: int  # Kafka offsets in the run's scope
    unique_events: int  # what the producer meant to deliver once each
    stored: int
    quarantined: int
    duplicates_in_db: int
    lost: int  # unique_events - stored - quarantined
    throughput_eps: float
    e2e_latency_ms: dict[str, float]  # p50, p95, p99, max
    stages_ms: dict[str, dict[str, float]]  # stage -> avg, p95, max
    quality: dict[str, int]  # category -> quarantined
    quality_by_rule: dict[str, dict[str, int]]
    late_events: int
    injected_lateness_s: dict[str, float]  # events, p50, max
    rows_without_ledger: int

    @property
    def exact(self) -> bool:
        """Nothing lost, nothing stored twice, no row without its ledger entry."""
        return (self.lost, self.duplicates_in_db, self.rows_without_ledger) == (0, 0, 0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(settings: Settings, scope: RunScope, unique_events: int, late_threshold_s: float = 60.0) -> RunSummary:
    with _run_cursor(settings, scope) as cur:
        query = STORED_SUMMARY if scope.accounting == "stored" else SUMMARY
        cur.execute(query, {"pipeline": scope.pipeline, "late_s": late_threshold_s, "late_min_s": LATE_MIN_S})
        stored, duplicates, late, made_late, without_ledger, span_s, stages = cur.fetchone()
        cur.execute(QUARANTINE_BY_CATEGORY)
        by_rule = cur.fetchall()
    quality = dict.fromkeys(CATEGORIES, 0)
    quality_by_rule: dict[str, dict[str, int]] = {c: {} for c in CATEGORIES}
    for category, rule, n in by_rule:
        quality[category] += n
        quality_by_rule[category][rule] = n
    quarantined = sum(quality.values())
    stages = stages or {}
    e2e = stages.get("end_to_end", {})
    return RunSummary(
        produced=scope.produced,
        unique_events=unique_events,
        stored=stored,
        quarantined=quarantined,
        duplicates_in_db=duplicates,
        lost=unique_events - stored - quarantined,
        throughput_eps=round(scope.produced / float(span_s), 1) if span_s else 0.0,
        e2e_latency_ms={k: float(e2e.get(k, 0)) for k in ("p50", "p95", "p99", "max")},
        stages_ms={
            s: {k: float(stages[s][k]) for k in ("avg", "p95", "max")}
            for s in (*STAGE_ORDER, "kafka_to_commit")
            if s in stages
        },
        quality=quality,
        quality_by_rule=quality_by_rule,
        late_events=late,
        injected_lateness_s={
            "events": made_late["events"],
            "p50": round(float(made_late["p50"] or 0), 1),
            "max": round(float(made_late["max"] or 0), 1),
        },
        rows_without_ledger=without_ledger,
    )


def timeline(
    settings: Settings, scope: RunScope, late_threshold_s: float = 60.0, starts: Sequence[float] = (0.0,)
) -> tuple[list[dict], list[dict]]:
    """The run over time, from its first append (a run of valid events: each appended event is one to commit).

    Second by second: events appended, committed, the lag (appended so far less committed so far) and the e2e
    p95 of that second's events (None when it had none on time). And per window of append time, window i from
    ``starts[i]`` s (the last to the end): its events and their e2e p95 and p99 (ms; 0 without events)."""
    if scope.accounting != "ledger":
        raise ValueError("a timeline needs the ledger's batch times: a stock sink's run has none")
    params = {"pipeline": scope.pipeline, "late_s": late_threshold_s, "late_min_s": LATE_MIN_S}
    with _run_cursor(settings, scope) as cur:
        cur.execute(TIMELINE, params)
        rows = cur.fetchall()
        cur.execute(WINDOWS, {**params, "starts": list(starts)})
        found = {w: (n, p95, p99) for w, n, p95, p99 in cur.fetchall()}
    seconds, appended, committed = [], 0, 0
    for second, n_appended, n_committed, p95 in rows:
        appended, committed = appended + n_appended, committed + n_committed
        seconds.append(
            {
                "s": second,
                "appended": n_appended,
                "committed": n_committed,
                "lag": appended - committed,
                "p95_ms": round(float(p95), 1) if p95 is not None else None,
            }
        )
    windows = []
    for i in range(1, len(starts) + 1):
        n, p95, p99 = found.get(i, (0, None, None))
        windows.append({"events": n, "p95_ms": round(float(p95 or 0), 1), "p99_ms": round(float(p99 or 0), 1)})
    return seconds, windows
