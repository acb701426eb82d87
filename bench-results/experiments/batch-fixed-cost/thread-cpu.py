"""CPU per JVM thread over a window: `thread-cpu.py PID SECONDS` (names from jstack; digits folded to N)."""

import collections
import os
import re
import subprocess
import sys
import time


def thread_names(pid: int) -> dict[int, str]:
    dump = subprocess.run(["jstack", str(pid)], capture_output=True, text=True, check=False).stdout
    names = {}
    for line in dump.splitlines():
        if m := re.match(r'^"(.*?)".*nid=(0x[0-9a-f]+|[0-9]+)', line):  # hex before Java 19
            names[int(m.group(2), 0)] = m.group(1)
    return names


def ticks(pid: int) -> dict[int, int]:
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        sys.exit(f"process {pid} ended")
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(tid)] = int(fields[11]) + int(fields[12])  # utime + stime
    return out


def main() -> None:
    pid, window = int(sys.argv[1]), float(sys.argv[2])
    if not os.path.exists(f"/proc/{pid}"):
        sys.exit(f"no process {pid}")
    names, before, began = thread_names(pid), ticks(pid), time.monotonic()
    while time.monotonic() - began < window:  # the window, polled: a process that ends in it gives no figures
        if not os.path.exists(f"/proc/{pid}"):
            sys.exit(f"process {pid} ended {time.monotonic() - began:.0f} s into the {window:.0f} s window")
        time.sleep(0.2)
    after, hz = ticks(pid), os.sysconf("SC_CLK_TCK")
    per_name: collections.Counter[str] = collections.Counter()
    for tid, t in after.items():
        per_name[re.sub(r"[0-9]+", "N", names.get(tid, "?"))] += (t - before.get(tid, 0)) / hz
    total = sum(per_name.values())
    print(f"total {total:.1f} s CPU in {window} s = {total / window * 100:.0f}% of a core")
    for name, s in per_name.most_common(14):
        print(f"{s:7.2f} s {s / window * 100:5.1f}%  {name}")


if __name__ == "__main__":
    main()
