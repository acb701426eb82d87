"""`up`, `down` and `status` over the five local services, in dependency order, and the optional ones
(`up --with pgadmin`)."""

from __future__ import annotations

import itertools
import logging
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from core.settings import Settings, settings_env
from infra.runtime.base import Service, ServiceStatus
from infra.runtime.logs import rotate_all
from infra.runtime.process import ManagedProcess
from infra.runtime.services.alertmanager import Alertmanager
from infra.runtime.services.etcd import Etcd
from infra.runtime.services.kafka import Kafka, check_cluster_size, nodes
from infra.runtime.services.patroni import check_mode, members
from infra.runtime.services.pgadmin import PgAdmin
from infra.runtime.services.postgres import Postgres
from infra.runtime.services.prometheus import Prometheus
from infra.runtime.services.registry import Registry
from infra.runtime.services.spark import cluster, installed_workers

log = logging.getLogger(__name__)

#: Start order: Patroni keeps its leader key in etcd (with PostgreSQL replicas only); the registry stores its schemas
#: in PostgreSQL; Prometheus sends alerts to Alertmanager.
SERVICE_TYPES: tuple[type[Service], ...] = (Etcd, Postgres, Kafka, Registry, Alertmanager, Prometheus)
SERVICE_NAMES = tuple(t.name for t in SERVICE_TYPES)
#: Started only when asked for (`up --with NAME`), after the others; stopped by `down` like them.
OPTIONAL_TYPES: tuple[type[Service], ...] = (PgAdmin,)
OPTIONAL_NAMES = tuple(t.name for t in OPTIONAL_TYPES)


def services(settings: Settings, only: list[str] | None = None, optional: tuple[str, ...] = ()) -> list[Service]:
    """The core services (of ``only``, if given; Kafka as each node of the local cluster), then the named optional
    ones."""

    def instances(t: type[Service]) -> list[Service]:
        if t is Kafka:
            return list(nodes(settings))
        if t is Postgres:
            return list(members(settings))
        if t is Etcd:  # Patroni's store: only with PostgreSQL replicas of ours
            return [Etcd(settings)] if settings.postgres_host is None and settings.postgres_replica_count else []
        return [t(settings)]

    return [s for t in SERVICE_TYPES if not only or t.name in only for s in instances(t)] + [
        t(settings) for t in OPTIONAL_TYPES if t.name in optional
    ]


def _start_groups(wanted: list[Service]) -> list[list[Service]]:
    """Services in start order, the nodes of one quorum together: none of them is healthy until most of them run."""
    groups: list[list[Service]] = []
    for service in wanted:
        if groups and service.quorum and type(groups[-1][0]) is type(service):
            groups[-1].append(service)
        else:
            groups.append([service])
    return groups


def running_optional(settings: Settings) -> tuple[str, ...]:
    """The optional services running now (status shows them; one not asked for is no fault of the stack's)."""
    return tuple(t.name for t in OPTIONAL_TYPES if t(settings).process.pid() is not None)


def spark_cluster(settings: Settings, workers: int | None = None) -> list[Service]:
    """The local Spark standalone master and its workers (all that this runtime folder has run, unless told)."""
    count = installed_workers(settings.runtime_dir) if workers is None else workers
    if workers is None and count == 0 and not (settings.runtime_dir / "spark-master").exists():
        return []
    return cluster(settings, count)


def watchdog_process(settings: Settings) -> ManagedProcess:
    """The watchdog (infra/runtime/watchdog.py) as a background process of ours."""
    return ManagedProcess("watchdog", settings.runtime_dir)


def start_watchdog(settings: Settings) -> bool:
    """Start the watchdog unless it runs. Returns whether this call started it."""
    process = watchdog_process(settings)
    if process.pid() is not None:
        return False
    process.start([sys.executable, "-m", "infra", "watchdog"], env=settings_env(settings))
    return True


def up(
    settings: Settings,
    on_step: Callable[[str, str], None] = lambda name, what: None,
    only: list[str] | None = None,
    watchdog: bool = False,
    with_: tuple[str, ...] = (),
    spark_workers: int = 0,
) -> list[str]:
    """Start whatever is not running (of ``only``, if given, plus the optional services in ``with_`` and a Spark
    standalone master with ``spark_workers`` workers), then the watchdog if asked. On failure, stop what this
    call started and re-raise."""
    started: list[Service] = []
    rotate_all(settings)  # the watchdog rotates while it runs; a stack started without it gets this much
    wanted = services(settings, only, with_) + (spark_cluster(settings, spark_workers) if spark_workers else [])
    if any(isinstance(s, Kafka) and s.managed for s in wanted):
        check_cluster_size(settings)  # before anything starts: a node of another size would never join
    check_mode(settings)  # PostgreSQL with replicas, or one server: changed only between `down` and `up`
    try:
        for group in _start_groups(wanted):
            for service in group:
                if not service.managed:
                    continue
                if service.process.pid() is not None:
                    on_step(service.name, "already running")
                else:
                    on_step(service.name, "starting")
                    service.launch()
                    started.append(service)
            for service in group:
                if service in started:
                    service.wait_until_healthy()
            for service in group:
                service.after_start()
                on_step(service.name, "external" if not service.managed else "healthy")
    except BaseException:
        for service in reversed(started):
            service.stop()
        raise
    if spark_workers:
        prometheus = Prometheus(settings)
        if prometheus.managed and prometheus.process.pid() is not None:
            prometheus.write_targets()  # it scrapes the cluster from now on
    if watchdog and start_watchdog(settings):
        on_step("watchdog", "started")
    return [s.name for s in started]


def down(settings: Settings) -> list[str]:
    """Stop the watchdog, then every service of ours, in reverse order. Succeeds when nothing runs."""
    watchdog = ["watchdog"] if watchdog_process(settings).stop() else []
    return watchdog + stop_in_reverse(services(settings, optional=OPTIONAL_NAMES) + spark_cluster(settings))


def down_services(settings: Settings, names: list[str]) -> list[str]:
    """Stop the named services of ours, in reverse start order."""
    return stop_in_reverse(services(settings, names))


def stop_in_reverse(started: list[Service]) -> list[str]:
    """Stop services in reverse start order, the nodes of one cluster (services of one kind side by side) at once:
    one by one, the last node of a KRaft quorum waits out its controlled shutdown alone, with no quorum to answer
    it (30 s, then SIGKILL). The names of those that were running."""
    stopped: list[str] = []
    for _, kind in itertools.groupby(reversed(started), key=type):
        group = list(kind)
        with ThreadPoolExecutor(len(group)) as pool:
            ran = list(pool.map(lambda service: service.stop(), group))
        stopped += [s.name for s, was_running in zip(group, ran, strict=True) if was_running]
    return stopped


def status(settings: Settings) -> list[ServiceStatus]:
    running_cluster = [s for s in spark_cluster(settings) if s.process.pid() is not None]
    return [s.status() for s in services(settings, optional=running_optional(settings)) + running_cluster]
