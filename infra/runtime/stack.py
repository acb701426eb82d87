"""`up`, `down` and `status` over the five local services, in dependency order, and the optional ones
(`up --with pgadmin`)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from core.settings import Settings, settings_env
from infra.runtime.base import Service, ServiceStatus
from infra.runtime.process import ManagedProcess
from infra.runtime.services.alertmanager import Alertmanager
from infra.runtime.services.kafka import Kafka
from infra.runtime.services.pgadmin import PgAdmin
from infra.runtime.services.postgres import Postgres
from infra.runtime.services.prometheus import Prometheus
from infra.runtime.services.registry import Registry
from infra.runtime.services.spark import cluster, installed_workers

log = logging.getLogger(__name__)

#: Start order: the registry stores its schemas in PostgreSQL; Prometheus sends alerts to Alertmanager.
SERVICE_TYPES: tuple[type[Service], ...] = (Postgres, Kafka, Registry, Alertmanager, Prometheus)
SERVICE_NAMES = tuple(t.name for t in SERVICE_TYPES)
#: Started only when asked for (`up --with NAME`), after the others; stopped by `down` like them.
OPTIONAL_TYPES: tuple[type[Service], ...] = (PgAdmin,)
OPTIONAL_NAMES = tuple(t.name for t in OPTIONAL_TYPES)


def services(settings: Settings, only: list[str] | None = None, optional: tuple[str, ...] = ()) -> list[Service]:
    """The core services (of ``only``, if given), then the named optional ones."""
    return [t(settings) for t in SERVICE_TYPES if not only or t.name in only] + \
        [t(settings) for t in OPTIONAL_TYPES if t.name in optional]


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


def up(settings: Settings, on_step: Callable[[str, str], None] = lambda name, what: None,
       only: list[str] | None = None, watchdog: bool = False, with_: tuple[str, ...] = (),
       spark_workers: int = 0) -> list[str]:
    """Start whatever is not running (of ``only``, if given, plus the optional services in ``with_`` and a Spark
    standalone master with ``spark_workers`` workers), then the watchdog if asked. On failure, stop what this
    call started and re-raise."""
    started: list[Service] = []
    wanted = services(settings, only, with_) + (spark_cluster(settings, spark_workers) if spark_workers else [])
    try:
        for service in wanted:
            if not service.managed:
                on_step(service.name, "external")
                service.after_start()
                continue
            if service.process.pid() is not None:
                on_step(service.name, "already running")
            else:
                on_step(service.name, "starting")
                service.start()
                started.append(service)
            service.after_start()
            on_step(service.name, "healthy")
    except BaseException:
        for service in reversed(started):
            service.stop()
        raise
    if watchdog and start_watchdog(settings):
        on_step("watchdog", "started")
    return [s.name for s in started]


def down(settings: Settings) -> list[str]:
    """Stop the watchdog, then every service of ours, in reverse order. Succeeds when nothing runs."""
    watchdog = ["watchdog"] if watchdog_process(settings).stop() else []
    everything = services(settings, optional=OPTIONAL_NAMES) + spark_cluster(settings)
    return watchdog + [s.name for s in reversed(everything) if s.stop()]


def down_services(settings: Settings, names: list[str]) -> list[str]:
    """Stop the named services of ours, in reverse start order."""
    return [s.name for s in reversed(services(settings, names)) if s.stop()]


def status(settings: Settings) -> list[ServiceStatus]:
    running_cluster = [s for s in spark_cluster(settings) if s.process.pid() is not None]
    return [s.status() for s in services(settings, optional=running_optional(settings)) + running_cluster]
