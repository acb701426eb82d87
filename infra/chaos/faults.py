"""Faults injected for real, on loopback: kills, an immediate PostgreSQL stop, a killed session,
a TCP proxy whose traffic the kernel drops (a partition, not a refusal), a full file system."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Self

from core.database import connect
from core.exceptions import DependencyMissing
from core.settings import Settings
from infra.runtime.services.postgres import Postgres


# Processes ------------------------------------------------------------------------------
def child_pids(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux's /proc)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return ""


def wait_until(condition, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return value


# PostgreSQL ------------------------------------------------------------------------------
def admin_sql(settings: Settings, statement: str, params: tuple = ()):
    """One statement as the superuser, outside a transaction (CREATE TABLESPACE, pg_terminate_backend…);
    the first column of its first row, if it returns rows."""
    conn = connect(settings, "admin", "postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params or None)
            return cur.fetchone()[0] if cur.description else None
    finally:
        conn.close()


def terminate_writer_sessions(settings: Settings) -> int:
    """pg_terminate_backend on every session of the writer role in the settings' database."""
    return admin_sql(
        settings,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND usename = %s",
        (settings.postgres_db, settings.writer_user),
    )


def writer_in_transaction(settings: Settings) -> bool:
    """Whether the writer has a transaction open right now: the sink is inside its write."""
    return (
        admin_sql(
            settings,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND usename = %s AND xact_start IS NOT NULL",
            (settings.postgres_db, settings.writer_user),
        )
        > 0
    )


def tablespace_dir(settings: Settings, disk: Path) -> Path:
    """An empty folder on ``disk`` that the server's user owns, for CREATE TABLESPACE."""
    folder = disk / "tablespace"
    folder.mkdir(exist_ok=True)
    user = Postgres(settings).run_as()
    if user is not None:
        os.chown(folder, *user)
    return folder


def postgres_immediate_stop(settings: Settings) -> None:
    """SIGQUIT to the postmaster, which is what `pg_ctl stop -m immediate` sends: no checkpoint, crash recovery
    at the next start."""
    process = Postgres(settings).process
    pid = process.pid()
    if pid is None:
        raise RuntimeError("PostgreSQL is not ours to stop (not running, or external)")
    os.kill(pid, signal.SIGQUIT)
    wait_until(lambda: process.pid() is None, 30, "the postmaster to exit")


def postgres_start(settings: Settings) -> None:
    if not Postgres(settings).start():
        raise RuntimeError("PostgreSQL was already running")


# A partition: a proxy the job connects through, whose packets the kernel drops -----------
def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _quiet_on_cancel(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """Closing the proxy cancels its connections' tasks: that is not an error worth a traceback."""
    if not isinstance(context.get("exception"), asyncio.CancelledError):
        loop.default_exception_handler(context)


class Proxy:
    """A plain TCP forwarder on loopback (asyncio, in a thread): ``listen_port`` -> ``target``. It gives the
    job a path of its own to a service, which :class:`Partition` can then cut without touching anyone else."""

    def __init__(self, host: str, target_port: int):
        self.host, self.target_port = host, target_port
        self.port = free_port(host)
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(_quiet_on_cancel)
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"proxy:{self.port}", daemon=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError):
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def __enter__(self) -> Self:
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, self.host, self.port), self.loop
        ).result(10)
        return self

    async def _close(self) -> None:
        self.server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Partition:
    """Drops every packet to and from a loopback port (nftables), as a network partition does: no reset, no
    refusal, just silence, until :meth:`heal`."""

    TABLE = "shopstream_chaos"

    def __init__(self, port: int):
        self.port = port
        if shutil.which("nft") is None:
            raise DependencyMissing("the partition scenarios drop packets with nftables: apt-get install nftables")

    def _nft(self, *args: str) -> None:
        subprocess.run(["nft", *args], check=True, capture_output=True, text=True)

    def cut(self) -> None:
        self._nft("add", "table", "inet", self.TABLE)
        self._nft("add", "chain", "inet", self.TABLE, "out", "{ type filter hook output priority 0 ; }")
        self._nft("add", "rule", "inet", self.TABLE, "out", "tcp", "dport", str(self.port), "drop")
        self._nft("add", "rule", "inet", self.TABLE, "out", "tcp", "sport", str(self.port), "drop")

    def heal(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._nft("delete", "table", "inet", self.TABLE)


# A full file system ------------------------------------------------------------------------
class SmallDisk:
    """A size-limited tmpfs mounted at ``path``, which :meth:`fill` fills up and :meth:`free` empties."""

    def __init__(self, path: Path, size_mb: int = 256):
        self.path, self.size_mb = path, size_mb
        self.filler = path / ".filler"

    def __enter__(self) -> Self:
        self.path.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m", "tmpfs", str(self.path)],
            check=True,
            capture_output=True,
            text=True,
        )
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False, capture_output=True)

    def fill(self) -> None:
        """Write until ENOSPC, in 1 MiB then 4 KiB pieces (unbuffered): not even a page is left."""
        with open(self.filler, "wb", buffering=0) as out:
            for size in (1 << 20, 4096):
                chunk = b"\0" * size
                try:
                    while True:
                        out.write(chunk)
                except OSError:  # ENOSPC: full at this size
                    pass

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)
