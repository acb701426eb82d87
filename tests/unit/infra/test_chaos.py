"""The chaos harness's bookkeeping: which mechanism handled a fault, the table's spreads, its options."""

import pytest
from pydantic import ValidationError

from infra.chaos.harness import SCENARIOS, handled_by, spread
from infra.chaos.options import SCENARIOS as NAMES
from infra.chaos.options import ChaosOptions


def test_every_named_scenario_exists():
    assert set(NAMES) == set(SCENARIOS)


def test_an_unknown_scenario_is_refused_with_the_choices():
    with pytest.raises(ValidationError, match=r"unknown scenario.*choose from job-sigkill"):
        ChaosOptions(scenarios="job-sigkill,nope")
    assert ChaosOptions(scenarios="pg-stop-10s,broker-kill").scenarios == ["pg-stop-10s", "broker-kill"]


@pytest.mark.parametrize(
    ("before", "after", "services", "expected"),
    [
        ({"shopstream_sink_retries_total": 0}, {"shopstream_sink_retries_total": 3}, 0, "sink retried the batch"),
        (
            {"restarts:query_failed": 0},
            {"restarts:query_failed": 1, "shopstream_sink_retries_total": 0},
            0,
            "query restarted in the driver",
        ),
        # a new process: its retry counter started again from 0, but the restart reason carried on
        (
            {"shopstream_sink_retries_total": 5},
            {"restarts:signal_SIGKILL": 1, "shopstream_sink_retries_total": 0},
            0,
            "process restarted by its supervisor",
        ),
        ({}, {}, 1, "service restarted by the watchdog"),
        (
            {"shopstream_sink_retries_total": 2},
            {"shopstream_sink_retries_total": 2},
            0,
            "rode it out (its clients reconnected)",
        ),
    ],
)
def test_the_mechanism_is_read_from_the_jobs_counters(before, after, services, expected):
    assert handled_by(before, after, services) == expected


def test_a_spread_says_how_many_runs_never_showed_the_signal():
    assert spread([1.0, None, 3.0, 2.0]) == {"min": 1.0, "median": 2.0, "max": 3.0, "missing": 1}
    assert spread([None]) is None


def test_the_proxy_forwards_both_ways_and_closes_quietly(capsys):
    import socket
    import threading

    from infra.chaos.faults import Proxy

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def echo_upper():
        conn, _ = server.accept()
        with conn:
            conn.sendall(conn.recv(100).upper())
            conn.recv(100)  # held open until the proxy closes

    threading.Thread(target=echo_upper, daemon=True).start()
    with Proxy("127.0.0.1", port) as proxy:
        assert proxy.port != port
        client = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        client.sendall(b"through the proxy")
        assert client.recv(100) == b"THROUGH THE PROXY"
    client.close()
    server.close()
    assert "Traceback" not in capsys.readouterr().err
