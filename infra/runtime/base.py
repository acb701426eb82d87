"""What every local service has in common: ports, a process, a health check, a version."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import httpx

from core.settings import Settings
from infra.runtime.process import ManagedProcess, ensure_port_free, wait_until_healthy


def answers_ok(url: str) -> bool:
    """Whether ``url`` answers 200 within 2 s: most services' health check."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class ServiceStatus:
    name: str
    running: bool
    healthy: bool
    version: str
    address: str
    pid: int | None
    managed: bool = True


class Service(ABC):
    """A local background service. Subclasses say how to prepare, start and probe it."""

    name: str = ""
    #: (port, settings field) pairs checked before start.
    ports: tuple[tuple[str, str], ...] = ()
    #: Nodes of one quorum (Kafka's): `up` starts them all before it waits for any to be healthy.
    quorum: bool = False

    def __init__(self, settings: Settings):
        self.settings = settings
        self.process = ManagedProcess(self.name, settings.runtime_dir)

    @property
    def home(self) -> Path:
        """This service's data folder under .runtime/."""
        return self.settings.runtime_dir / self.name

    @property
    def managed(self) -> bool:
        """False when settings point at an external instance, which we must not start."""
        return True

    # To implement --------------------------------------------------------------------
    def prepare(self) -> None:  # noqa: B027 - optional: most services need nothing
        """Fetch and initialise whatever the first start needs; idempotent."""

    @abstractmethod
    def command(self) -> list[str]: ...

    @abstractmethod
    def healthy(self) -> bool: ...

    @abstractmethod
    def version(self) -> str: ...

    @abstractmethod
    def address(self) -> str: ...

    def after_start(self) -> None:  # noqa: B027 - optional: most services need nothing
        """Idempotent set-up that needs the service running (roles, topics…)."""

    def run_as(self) -> tuple[int, int] | None:
        return None

    def env(self) -> dict[str, str]:
        """Variables the process gets on top of ours."""
        return {}

    # Shared behaviour ----------------------------------------------------------------
    def start(self) -> bool:
        """Start unless already running. Returns whether this call started it."""
        if not self.managed or self.process.pid() is not None:
            return False
        self.launch()
        self.wait_until_healthy()
        return True

    def launch(self) -> None:
        """Check the ports, prepare and start the process, without waiting for it to be healthy."""
        for port, setting in self.port_checks():
            ensure_port_free(self.settings.host, port, self.name, setting)
        self.home.mkdir(parents=True, exist_ok=True)
        self.prepare()
        self.process.start(self.command(), env=self.env(), user=self.run_as(), cwd=self.home)

    def wait_until_healthy(self) -> None:
        wait_until_healthy(self.process, self.healthy, self.settings.start_timeout_s)

    def port_checks(self) -> list[tuple[int, str]]:
        """(port, setting that names it) for each port this service listens on, checked free before a start."""
        return [(getattr(self.settings, field), setting) for field, setting in self.ports]

    def stop(self) -> bool:
        return self.process.stop()

    def status(self) -> ServiceStatus:
        pid = self.process.pid()
        running = pid is not None or not self.managed
        healthy = self.healthy() if running else False
        try:
            version = self.version()
        except (OSError, ValueError, LookupError):
            version = "?"
        return ServiceStatus(self.name, running, healthy, version, self.address(), pid, self.managed)
