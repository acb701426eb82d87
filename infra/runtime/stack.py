"""`up`, `down` and `status` over the four local services, in dependency order."""

from __future__ import annotations

import logging
from collections.abc import Callable

from core.settings import Settings
from infra.runtime.base import Service, ServiceStatus
from infra.runtime.services.kafka import Kafka
from infra.runtime.services.postgres import Postgres
from infra.runtime.services.prometheus import Prometheus
from infra.runtime.services.registry import Registry

log = logging.getLogger(__name__)

#: Start order: the registry stores its schemas in PostgreSQL.
SERVICE_TYPES: tuple[type[Service], ...] = (Postgres, Kafka, Registry, Prometheus)
SERVICE_NAMES = tuple(t.name for t in SERVICE_TYPES)


def services(settings: Settings, only: list[str] | None = None) -> list[Service]:
    return [t(settings) for t in SERVICE_TYPES if not only or t.name in only]


def up(settings: Settings, on_step: Callable[[str, str], None] = lambda name, what: None,
       only: list[str] | None = None) -> list[str]:
    """Start whatever is not running (of ``only``, if given). On failure, stop what this call started and re-raise."""
    started: list[Service] = []
    try:
        for service in services(settings, only):
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
    return [s.name for s in started]


def down(settings: Settings) -> list[str]:
    """Stop every service of ours, in reverse order. Succeeds when nothing runs."""
    return [s.name for s in reversed(services(settings)) if s.stop()]


def down_services(settings: Settings, names: list[str]) -> list[str]:
    """Stop the named services of ours, in reverse start order."""
    return [s.name for s in reversed(services(settings, names)) if s.stop()]


def status(settings: Settings) -> list[ServiceStatus]:
    return [s.status() for s in services(settings)]
