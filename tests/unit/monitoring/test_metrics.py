import socket
import threading
import urllib.request

import numpy as np
from prometheus_client import CollectorRegistry, Counter, generate_latest

from core.metrics import LATENCY_BUCKETS, build_metrics, observe_many, serve_when_free
from tests.fixtures.waiting import wait_for


def _samples(metrics, stage):
    text = generate_latest(metrics.registry).decode()
    return sorted(line for line in text.splitlines() if f'stage="{stage}"' in line and "latency" in line)


def test_observe_many_equals_observing_one_by_one():
    values = np.random.default_rng(1).exponential(0.5, size=5000)
    values[:3] = [LATENCY_BUCKETS[0], LATENCY_BUCKETS[5], 1e6]  # exactly on a bound, and beyond all
    one, bulk = build_metrics(CollectorRegistry()), build_metrics(CollectorRegistry())
    for v in values:
        one.observe_stage("queue", float(v))
    observe_many(bulk.stage_latency.labels(stage="queue"), values)
    a, b = _samples(one, "queue"), _samples(bulk, "queue")

    def counts(lines):
        return [ln for ln in lines if "_sum" not in ln and "_created" not in ln]

    assert counts(a) == counts(b) and len(counts(a)) == len(LATENCY_BUCKETS) + 2
    sum_a = float(next(ln for ln in a if "_sum" in ln).split()[-1])
    sum_b = float(next(ln for ln in b if "_sum" in ln).split()[-1])
    assert abs(sum_a - sum_b) < 1e-6 * sum_a


def test_the_stage_histogram_has_its_fixed_name_and_declared_stages_start_at_zero():
    metrics = build_metrics(CollectorRegistry(), stages=("generate", "produce"))
    text = generate_latest(metrics.registry).decode()
    assert 'shopstream_stage_latency_seconds_count{stage="generate"} 0.0' in text
    assert 'stage="queue"' not in text


def test_a_driver_serves_the_metrics_port_once_the_driver_before_it_lets_go(monkeypatch):
    """A standby that took over waits for the old driver's port (streaming.job), then serves on it."""
    import prometheus_client

    registry = CollectorRegistry()
    Counter("takeover_probe", "a sample to find", registry=registry).inc()
    attempts, serving = [], threading.Event()
    real = prometheus_client.start_http_server

    def counted(*args, **kwargs):
        attempts.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(prometheus_client, "start_http_server", counted)
    with socket.socket() as old_driver:
        old_driver.bind(("127.0.0.1", 0))
        old_driver.listen()
        port = old_driver.getsockname()[1]
        serve_when_free(port, "127.0.0.1", registry, then=serving.set)
        wait_for(lambda: len(attempts) >= 2, 10, "a second try at the held port")
        assert not serving.is_set()
    wait_for(serving.is_set, 10, "the metrics served once the port was free")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        assert "takeover_probe_total 1.0" in answer.read().decode()
