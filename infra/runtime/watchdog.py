"""The local services' watchdog, which `up` starts by default: a service of ours that died
(PostgreSQL after a PANIC on a full disk, a broker after kill -9, an OOM-killed registry)
is started again, with backoff, the way systemd's Restart= or a Kubernetes pod would. It also
rotates the logs under .runtime/logs (infra.runtime.logs).
`down` stops the watchdog before the services, so a deliberate stop is never undone.

Restarts since the watchdog started are kept in .runtime/watchdog.json, which `status` and
`run`'s summary read.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from core.retry import LOCAL_SERVICE, STEADY_AFTER_S
from core.settings import Settings
from infra.runtime import stack
from infra.runtime.logs import Rotation

log = logging.getLogger(__name__)


@dataclass
class ServiceRecord:
    restarts: int = 0
    detected_at: float | None = None  # Unix time the watchdog last found it not running
    last_restart: float | None = None  # Unix time
    last_error: str | None = None


def state_file(settings: Settings) -> Path:
    return settings.runtime_dir / "watchdog.json"


def restarts(settings: Settings) -> dict[str, ServiceRecord]:
    """Restarts so far, by service (empty before the watchdog's first restart)."""
    try:
        return {name: ServiceRecord(**r) for name, r in json.loads(state_file(settings).read_text()).items()}
    except (FileNotFoundError, ValueError, TypeError):
        return {}


def _save(settings: Settings, records: dict[str, ServiceRecord]) -> None:
    """Best effort: a full disk must not stop the watchdog (restarting services is what matters then)."""
    path = state_file(settings)
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps({name: asdict(r) for name, r in records.items()}, indent=2))
        tmp.replace(path)
    except OSError as exc:
        log.warning("could not record restarts in %s: %s", path, exc)


def watch(settings: Settings, stop: threading.Event | None = None) -> None:
    """Until ``stop``: every watchdog_interval_s, start each local service that is not running."""
    stop = stop or threading.Event()
    services = [s for s in stack.services(settings) if s.managed]
    records: dict[str, ServiceRecord] = {}
    _save(settings, records)
    delay = {s.name: LOCAL_SERVICE.first_s for s in services}
    next_try = {s.name: 0.0 for s in services}
    rotate_logs = Rotation(settings)
    log.info("watching %s every %g s", ", ".join(s.name for s in services), settings.watchdog_interval_s)
    while not stop.wait(settings.watchdog_interval_s):
        rotate_logs()
        for service in services:
            if stop.is_set():
                return
            record = records.setdefault(service.name, ServiceRecord())
            now = time.monotonic()
            if service.process.pid() is not None:
                if record.last_restart and time.time() - record.last_restart > STEADY_AFTER_S:
                    delay[service.name] = LOCAL_SERVICE.first_s
                continue
            if now < next_try[service.name]:
                continue
            if not record.last_error:  # a new outage, not the next try of a failing start
                record.detected_at = time.time()
                _save(settings, records)
            log.warning("%s is not running: starting it (its log: %s)", service.name, service.process.log_file)
            try:
                service.start()
                service.after_start()
            except Exception as exc:  # noqa: BLE001 - a failed start is retried, whatever it was
                record.last_error = str(exc)[:300]
                next_try[service.name] = time.monotonic() + delay[service.name]
                log.warning("%s did not start: %s; next try in %.0f s", service.name, exc, delay[service.name])
                delay[service.name] = LOCAL_SERVICE.next(delay[service.name], settings.watchdog_max_backoff_s)
            else:
                record.restarts += 1
                record.last_error = None
                log.warning("%s is back (restart %d)", service.name, record.restarts)
            record.last_restart = time.time()
            _save(settings, records)
