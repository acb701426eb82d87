"""Background processes with pid files, logs under .runtime/logs and health waits."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from core.exceptions import PortInUse, ServiceUnhealthy


class ManagedProcess:
    """One long-running process of ours, found again across CLI invocations by its pid file."""

    def __init__(self, name: str, runtime_dir: Path):
        self.name = name
        self.pid_file = runtime_dir / "pids" / f"{name}.pid"
        self.log_file = runtime_dir / "logs" / f"{name}.log"

    def pid(self) -> int | None:
        """The pid if our process is alive, else None (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if alive(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def start(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        user: tuple[int, int] | None = None,
    ) -> int:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child
        preexec = drop_privileges(*user) if user is not None else None

        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
            preexec_fn=preexec,
        )
        log.close()
        self.pid_file.write_text(str(proc.pid))
        return proc.pid

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM the process group, SIGKILL after ``timeout``. Returns whether one was running."""
        pid = self.pid()
        if pid is None:
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.1)
        if alive(pid):
            _signal_group(pid, signal.SIGKILL)
            while alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def last_log_line(self) -> str:
        """The most telling line of the log: the root cause of a Java stack, else an error, else the last."""
        try:
            lines = [ln.strip() for ln in self.log_file.read_text(errors="replace").splitlines() if ln.strip()]
        except FileNotFoundError:
            return ""
        for marker in ("Caused by:", "ERROR", "FATAL", "Error", "Exception"):
            hits = [ln for ln in lines if marker in ln]
            if hits:
                return hits[-1][:300]
        return lines[-1][:300] if lines else ""


def drop_privileges(uid: int, gid: int):
    def preexec() -> None:  # runs in the child, before exec
        os.setgid(gid)
        os.setuid(uid)

    return preexec


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_is_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_port_free(host: str, port: int, service: str, setting: str) -> None:
    if not port_is_free(host, port):
        raise PortInUse(
            f"port {port} on {host}, wanted by {service}, is taken by another process: "
            f"stop that process or set SHOPSTREAM_{setting.upper()} to a free port"
        )


def wait_until_healthy(process: ManagedProcess, healthy: Callable[[], bool], timeout: float) -> None:
    """Poll ``healthy`` until it is true; fail fast if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.pid() is None:
            raise ServiceUnhealthy(
                f"{process.name} exited during start-up: see {process.log_file} "
                f"(last line: {process.last_log_line() or 'empty'})"
            )
        if healthy():
            return
        time.sleep(0.5)
    raise ServiceUnhealthy(
        f"{process.name} did not become healthy within {timeout:.0f}s: see {process.log_file}; "
        f"raise SHOPSTREAM_START_TIMEOUT_S if the machine is just slow"
    )
