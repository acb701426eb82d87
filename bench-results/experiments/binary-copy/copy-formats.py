"""PostgreSQL's cost of the sink's COPY, CSV against binary, and its share of the whole transaction (issue 27, item 7).

Run from the project root with the stack up and a database a bench run filled: ``.venv/bin/python
bench-results/experiments/binary-copy/copy-formats.py``. For each kind (click, order, line) it exports the newest N
stored rows in the staging table's column order twice, as CSV and as PostgreSQL binary, then, alternating the formats,
COPYs them into the staging table and runs the sink's insert statement for clicks and orders, rolling back each time.
It reports the server backend's CPU time (/proc/<pid>/schedstat) per row for the COPY and for the insert.
"""

import datetime as dt
import io
import statistics
import sys

from core.database import connect
from core.settings import Settings
from streaming import sql

N = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 7

conn = connect(Settings(), "admin")
cur = conn.cursor()
cur.execute("SELECT pg_backend_pid()")
pid = cur.fetchone()[0]


def cpu_s() -> float:
    """The backend's time on a CPU, in seconds (schedstat's first field: nanoseconds, not 10 ms ticks)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


KINDS = {
    # kind: (source table, staging columns, the sink's insert statement)
    "click": ("clickstream_events", sql.CLICK_COLUMNS, sql.INSERT_CLICKS),
    "order": ("orders", sql.ORDER_COLUMNS, sql.INSERT_ORDERS),
}


def export(table: str, cols: str, fmt: str) -> bytes:
    buf = io.BytesIO()
    fresh = cols.replace("event_id", "gen_random_uuid()", 1).replace(
        "event_time", "now() - (random() * 5) * interval '1 second'", 1
    )
    cur.copy_expert(
        f"COPY (SELECT {fresh} FROM (SELECT * FROM {table} ORDER BY event_time DESC LIMIT {N}) t) "
        f"TO STDOUT WITH (FORMAT {fmt})",
        buf,
    )
    rows = cur.rowcount
    conn.rollback()
    return rows, buf.getvalue()


params = {"batch_id": 99999999, "late_after": dt.timedelta(seconds=5)}
for kind, (table, cols, insert) in KINDS.items():
    stage = f"stage_{kind}"
    exported = {fmt: export(table, cols, fmt) for fmt in ("csv", "binary")}
    n = exported["csv"][0]
    data = {fmt: blob for fmt, (_, blob) in exported.items()}
    copy_ms = {f: [] for f in data}
    insert_ms = {f: [] for f in data}
    copy_cpu = {f: [] for f in data}
    insert_cpu = {f: [] for f in data}
    for _ in range(RUNS):
        for fmt, blob in data.items():
            cur.execute(sql.CREATE_STAGING)
            c0 = cpu_s()
            cur.copy_expert(f"COPY {stage} ({cols}) FROM STDIN WITH (FORMAT {fmt})", io.BytesIO(blob))
            c1 = cpu_s()
            cur.execute(insert, params)
            c2 = cpu_s()
            copy_cpu[fmt].append(c1 - c0)
            insert_cpu[fmt].append(c2 - c1)
            conn.rollback()
    for fmt, blob in data.items():
        c, i = statistics.median(copy_cpu[fmt]), statistics.median(insert_cpu[fmt])
        print(
            f"{kind:5} {fmt:6} {n} rows {len(blob) / n:6.0f} B/row  COPY {c * 1e6 / n:5.2f} µs/row  "
            f"insert {i * 1e6 / n:5.2f} µs/row  (medians of {RUNS}; COPY runs {[round(x * 1000) for x in copy_cpu[fmt]]} ms)"
        )
