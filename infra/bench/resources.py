"""CPU and memory per component, sampled from /proc while a benchmark level runs."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

CLK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid``. Each thread lists the children it forked, so all threads are read: a JVM forks
    from worker threads (a Spark worker's executors come from its ExecutorRunner threads)."""
    kids: list[str] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # the process ended between its parent's listing and this one: it has no children
        return []
    for task in tasks:
        try:
            kids += (task / "children").read_text().split()
        except OSError:
            continue
    out = [int(k) for k in kids]
    for k in list(out):
        out += _children(k)
    return out


def _cpu_rss(pids: list[int]) -> tuple[float, float]:
    cpu = rss = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
        except OSError:
            continue
        cpu += (int(fields[11]) + int(fields[12])) / CLK  # utime + stime
        rss += int(fields[21]) * PAGE
    return cpu, rss


class ResourceSampler(threading.Thread):
    """Samples each component once a second: a root pid with its descendants, or (for a
    name in ``alone``) the pid by itself, e.g. the producer inside the benchmark process
    whose children are the other components."""

    def __init__(self, roots: dict[str, int | None], alone: tuple[str, ...] = ()):
        super().__init__(daemon=True)
        self.roots = {k: v for k, v in roots.items() if v}
        self.alone = set(alone)
        self.stopped = threading.Event()
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.peak_rss: dict[str, float] = {}
        self.started = self.ended = time.monotonic()

    def _sample(self) -> None:
        for name, root in self.roots.items():
            cpu, rss = _cpu_rss([root] if name in self.alone else [root, *_children(root)])
            self.first.setdefault(name, cpu)
            self.last[name] = cpu
            self.peak_rss[name] = max(self.peak_rss.get(name, 0.0), rss)

    def run(self) -> None:
        self.started = time.monotonic()
        while not self.stopped.is_set():
            self._sample()
            self.stopped.wait(1.0)

    def stop(self) -> dict[str, dict[str, float]]:
        self.stopped.set()
        self.join(5)
        self._sample()
        wall = max(time.monotonic() - self.started, 1e-9)
        return {
            name: {
                "cpu_percent": round(100 * (self.last[name] - self.first[name]) / wall, 1),
                "peak_rss_mb": round(self.peak_rss[name] / 2**20, 1),
            }
            for name in self.last
        }
