"""Every Prometheus metric of the platform, declared in one place.

``build_metrics(registry)`` returns them all bound to one registry, so a test or a
benchmark can use a private registry and a process serves exactly one set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "shopstream"

STAGES = ("generate", "produce", "queue", "process", "db_write", "end_to_end")

# Latency buckets: the targets are a p95 of 1.5 s end to end and stage times of a few
# ms (produce ack) to a few s (a Spark micro-batch), so the buckets are dense from 1 ms
# to 2 s, where the SLO decisions are made, then coarse up to 60 s to still place a
# backlog or a restart. Fewer buckets keep the per-observation cost and the series low.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    10.0,
    30.0,
    60.0,
)


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    stage_latency: Histogram
    stage_events: Counter
    delivery_failures: Counter
    quality_records: Counter
    duplicates: Counter
    late_events: Counter
    batches: Counter
    sink_retries: Counter
    sink_retrying: Gauge
    last_commit: Gauge
    retry_started: Gauge
    last_failure: Gauge
    stalled: Gauge
    query_active: Gauge
    stalled_since: Gauge
    stream_restarts: Counter
    schema_reloads: Counter
    group_reset: Gauge
    active_driver: Gauge
    lease_epoch: Gauge
    fenced: Counter
    takeovers: Counter
    standby_ready: Gauge
    lease_acquired: Gauge
    redriven: Counter
    batch_phase: Histogram
    consumer_lag: Gauge
    view_age: Gauge
    partitions: Gauge
    servers: list = field(default_factory=list)  # the HTTP servers serving /metrics (serve_metrics)

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stage_latency.labels(stage=stage).observe(seconds)


def build_metrics(
    registry: CollectorRegistry | None = None, prefix: str = PREFIX, stages: tuple[str, ...] = ()
) -> Metrics:
    """All metrics on ``registry``; the ``stages`` this process measures start at zero."""
    registry = registry if registry is not None else CollectorRegistry()
    metrics = Metrics(
        registry=registry,
        stage_latency=Histogram(
            f"{prefix}_stage_latency_seconds",
            "Latency of each pipeline stage (see DESIGN: stage table).",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        stage_events=Counter(
            f"{prefix}_stage_events_total", "Events that passed through each stage.", ["stage"], registry=registry
        ),
        delivery_failures=Counter(
            f"{prefix}_producer_delivery_failures_total",
            "Events Kafka did not acknowledge, by reason.",
            ["reason"],
            registry=registry,
        ),
        quality_records=Counter(
            f"{prefix}_quality_records_total",
            "Records by data-quality outcome: category 'valid' or a quarantine category, with the rule that fired.",
            ["source", "category", "rule"],
            registry=registry,
        ),
        duplicates=Counter(
            f"{prefix}_sink_duplicates_total",
            "Valid events the sink did not store again (same event_id and event_time already stored).",
            registry=registry,
        ),
        late_events=Counter(
            f"{prefix}_sink_late_events_total",
            "Stored events that reached Kafka more than the lateness threshold after their event_time.",
            registry=registry,
        ),
        batches=Counter(
            f"{prefix}_sink_batches_total",
            "Micro-batches by outcome: committed, or skipped because the ledger already held them.",
            ["outcome"],
            registry=registry,
        ),
        sink_retries=Counter(
            f"{prefix}_sink_retries_total",
            "Sink attempts that failed on a transient error (the database or the "
            "dead-letter topic away) and were retried within the same micro-batch, by error.",
            ["reason"],
            registry=registry,
        ),
        sink_retrying=Gauge(
            f"{prefix}_sink_retrying", "1 while the sink is retrying a micro-batch, else 0.", registry=registry
        ),
        last_commit=Gauge(
            f"{prefix}_sink_last_commit_timestamp_seconds",
            "When the sink last committed a micro-batch (Unix time).",
            registry=registry,
        ),
        retry_started=Gauge(
            f"{prefix}_sink_retry_started_timestamp_seconds",
            "When the sink last began retrying a micro-batch (Unix time): the moment the job saw a dependency go away.",
            registry=registry,
        ),
        last_failure=Gauge(
            f"{prefix}_stream_last_failure_timestamp_seconds",
            "When the job's query last failed, or its supervisor saw its process end (Unix time).",
            registry=registry,
        ),
        stalled=Gauge(
            f"{prefix}_stream_stalled",
            "1 while input waits in Kafka (or Kafka cannot be reached) and the job has "
            "committed nothing for stall_after_s, else 0.",
            registry=registry,
        ),
        query_active=Gauge(
            f"{prefix}_stream_query_active",
            "1 while the job's streaming query runs, else 0 (warming up, restarting, stopped).",
            registry=registry,
        ),
        stalled_since=Gauge(
            f"{prefix}_stream_stalled_since_timestamp_seconds",
            "When the job last found itself stalled (Unix time).",
            registry=registry,
        ),
        stream_restarts=Counter(
            f"{prefix}_stream_restarts_total",
            "Restarts of the streaming query in the driver (query_failed) and "
            "of the job's process by its supervisor (the signal or exit code that ended it).",
            ["reason"],
            registry=registry,
        ),
        schema_reloads=Counter(
            f"{prefix}_stream_schema_reloads_total",
            "Planned, warm restarts of the streaming query to decode schema "
            "versions registered while it ran (not failures).",
            registry=registry,
        ),
        group_reset=Gauge(
            f"{prefix}_stream_group_reset_pending",
            "1 when the job found its consumer group reset by hand (a replay "
            "asked for): it leaves the group as it is and reads its own checkpoint; restart it with "
            "--from-group-offsets to replay.",
            registry=registry,
        ),
        active_driver=Gauge(
            f"{prefix}_stream_active_driver",
            "1 while this driver holds the pipeline's lease and runs the query, 0 while it is a standby.",
            registry=registry,
        ),
        lease_epoch=Gauge(
            f"{prefix}_stream_lease_epoch",
            "The epoch of the lease this driver holds (its fencing token); 0 while it holds none.",
            registry=registry,
        ),
        fenced=Counter(
            f"{prefix}_stream_fenced_commits_total",
            "Batch commits the database refused because another driver had taken the lease over (a higher epoch).",
            registry=registry,
        ),
        takeovers=Counter(
            f"{prefix}_stream_takeovers_total",
            "Leases this driver took over from another one that had died, hung or stopped.",
            registry=registry,
        ),
        standby_ready=Gauge(
            f"{prefix}_stream_standby_ready",
            "1 while this driver is a standby whose Spark session is warm and waits for the lease, else 0.",
            registry=registry,
        ),
        lease_acquired=Gauge(
            f"{prefix}_stream_lease_acquired_timestamp_seconds",
            "When this driver took the pipeline's lease (Unix time): for a standby, the moment it took over.",
            registry=registry,
        ),
        redriven=Counter(
            f"{prefix}_dead_letter_redriven_total",
            "Re-driven dead letters the job judged again: stored (their "
            "quarantine row resolved) or failed_again (no second row).",
            ["outcome"],
            registry=registry,
        ),
        batch_phase=Histogram(
            f"{prefix}_stream_batch_phase_seconds",
            "Micro-batch phase durations reported by Spark's StreamingQueryListener (durationMs).",
            ["phase"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        consumer_lag=Gauge(
            f"{prefix}_consumer_lag_records",
            "Log-end offset minus the sink ledger's committed offset.",
            ["topic", "partition"],
            registry=registry,
        ),
        view_age=Gauge(
            f"{prefix}_db_materialized_view_age_seconds",
            "Seconds since each rollup was last refreshed.",
            ["view"],
            registry=registry,
        ),
        partitions=Gauge(
            f"{prefix}_db_partitions",
            "Partitions of each fact table (daily ones plus the default).",
            ["table"],
            registry=registry,
        ),
    )
    for stage in stages:
        metrics.stage_latency.labels(stage=stage)
        metrics.stage_events.labels(stage=stage)
    return metrics


def serve_metrics(port: int | None, stages: tuple[str, ...], port_setting: str, host: str = "127.0.0.1") -> Metrics:
    """Fresh metrics for one process, served on ``host``:``port`` at /metrics (none when port is falsy)."""
    from prometheus_client import start_http_server

    from core.exceptions import PortInUse

    metrics = build_metrics(CollectorRegistry(), stages=stages)
    if port:
        try:
            metrics.servers.append(start_http_server(port, addr=host, registry=metrics.registry)[0])
        except OSError as exc:
            raise PortInUse(
                f"metrics port {port} is taken ({exc.strerror}): set SHOPSTREAM_{port_setting.upper()} "
                f"to a free port, or 0 to serve no metrics"
            ) from None
    return metrics


#: How often a driver waiting for the job's metrics port tries it (serve_when_free).
PORT_POLL_S = 0.2


def serve_when_free(port: int, host: str, registry: CollectorRegistry, then: Callable[[], None] | None = None) -> None:
    """Serve ``registry`` on ``port`` as soon as it is free (a driver that took over from one that still holds the
    job's port), from a daemon thread that tries every PORT_POLL_S (a bind is cheap; the port frees the moment the
    old driver's process ends); ``then`` runs once it serves."""
    from prometheus_client import start_http_server

    def bind() -> None:
        while True:
            try:
                start_http_server(port, addr=host, registry=registry)
            except OSError:
                time.sleep(PORT_POLL_S)
                continue
            if then is not None:
                then()
            return

    threading.Thread(target=bind, name=f"metrics-{port}", daemon=True).start()


def observe_many(histogram_child, values) -> None:
    """Add many observations at once (a numpy array of seconds) to one labelled histogram.

    Equivalent to calling ``observe`` per value, at numpy speed: a micro-batch has tens of
    thousands of latencies. Uses the client's bucket counters directly (stable since
    prometheus-client 0.4); a unit test checks it against ``observe``.
    """
    import numpy as np

    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return
    bounds = np.asarray(histogram_child._upper_bounds, dtype=float)
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    for bucket, count in zip(histogram_child._buckets, counts, strict=False):
        if count:
            bucket.inc(int(count))
    histogram_child._sum.inc(float(values.sum()))
