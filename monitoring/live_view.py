"""A live view without Docker: Prometheus's own graph page, opened on ready-made queries.

Grafana runs only in compose; locally, `status` and the README link this page. Each query
is a recording rule of ``monitoring/prometheus/rules/recording.yml``, and a test checks
that each returns data after a short run, as the Grafana panels' queries are checked.
"""

from __future__ import annotations

from urllib.parse import urlencode

#: title -> PromQL, in the order the page shows them
GRAPHS = {
    "p95 latency by stage (s)": "stage:shopstream_stage_latency_seconds:p95",
    "consumer lag (records)": "shopstream:consumer_lag_records:sum",
    "valid share of records (5 min)": "shopstream:quality_ratio:rate5m",
}


def graph_url(prometheus_url: str, range_input: str = "15m") -> str:
    """One link to the graph page with every query of :data:`GRAPHS` as its own panel."""
    params: dict[str, str] = {}
    for i, expr in enumerate(GRAPHS.values()):
        params |= {f"g{i}.expr": expr, f"g{i}.tab": "0", f"g{i}.range_input": range_input}
    return f"{prometheus_url.rstrip('/')}/graph?{urlencode(params)}"
