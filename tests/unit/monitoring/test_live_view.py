"""The live view's link opens Prometheus's graph page on exactly the ready-made queries."""

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

from monitoring.live_view import GRAPHS, graph_url

RULES = Path(__file__).resolve().parents[3] / "monitoring" / "prometheus" / "rules" / "recording.yml"


def test_the_link_carries_each_query_as_its_own_panel():
    url = urlsplit(graph_url("http://127.0.0.1:9090/"))
    assert (url.netloc, url.path) == ("127.0.0.1:9090", "/graph")
    params = parse_qs(url.query)
    assert [params[f"g{i}.expr"][0] for i in range(len(GRAPHS))] == list(GRAPHS.values())


def test_each_query_is_a_recording_rule():
    recorded = {
        rule["record"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    assert set(GRAPHS.values()) <= recorded
