"""Every 30 s, in % of one core: the stream job's JVM (all of it, its JIT compiler threads, Spark's executor task
threads, the stream execution thread), the job's Python processes and the bench process (which runs the producer).
Usage: `sampler.py SECONDS`, beside a `shopstream bench e2e` run: it stops when the bench does, or after SECONDS."""

import os
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")
SAMPLE_S = 30.0


def pids(pattern: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


def stat_ticks(path: str) -> int:
    """utime + stime of a /proc/.../stat file; 0 when the process or thread is gone."""
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def thread_ticks(pid: int) -> list[tuple[str, int]]:
    """(the kernel's thread name, ticks) for each thread of ``pid``."""
    out = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
        except OSError:
            continue
        out.append((name, stat_ticks(f"/proc/{pid}/task/{tid}/stat")))
    return out


def category(name: str) -> str | None:
    """The kernel keeps 15 characters of a thread's name."""
    if "CompilerThre" in name:
        return "jit"
    if name.startswith("Executor task"):
        return "exec"
    if name.startswith("stream executio"):
        return "stream"
    return None


def snapshot() -> tuple[int, dict[str, int]]:
    jvm = (pids("temurin-25.*pyspark") or [0])[0]
    ticks = dict.fromkeys(("jvm", "jit", "exec", "stream"), 0)
    for name, t in thread_ticks(jvm) if jvm else []:
        ticks["jvm"] += t
        if kind := category(name):
            ticks[kind] += t
    ticks["py"] = sum(stat_ticks(f"/proc/{p}/stat") for p in pids("python -m infra stream"))
    ticks["prod"] = sum(stat_ticks(f"/proc/{p}/stat") for p in pids("bench e2e --systems"))
    return jvm, ticks


def main() -> None:
    start = time.monotonic()
    end = start + float(sys.argv[1])
    previous = None
    while time.monotonic() < end and pids("bench e2e --systems"):  # until the bench ends, or the deadline
        jvm, ticks = snapshot()
        now = time.monotonic()
        if previous and previous[1] == jvm and jvm:
            elapsed = now - previous[0]
            shares = " ".join(f"{k}={100 * (ticks[k] - previous[2][k]) / HZ / elapsed:5.1f}" for k in ticks)
            print(f"{now - start:6.0f}s {shares}", flush=True)
        previous = (now, jvm, ticks)
        while time.monotonic() < min(now + SAMPLE_S, end) and pids("bench e2e --systems"):
            time.sleep(0.5)


if __name__ == "__main__":
    main()
