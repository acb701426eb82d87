"""The JIT's share of the job JVM's CPU, per run, from jstat-compiler.log.

Each line: time, the job JVM's pid, `jstat -compiler`'s Compiled, Failed and Time (the JIT's cumulative seconds),
and cpu=<the JVM's utime+stime in clock ticks>. The sampler was a shell loop every 30 s:
    jstat -compiler $PID | tail -1; awk '{print $14+$15}' /proc/$PID/stat
The window runs from the 4th sample of a JVM (about 90 s after it started, past the warm-up) to its next-to-last.
Usage: python compile-share.py jstat-compiler.log
"""

import collections
import sys

runs: dict[str, list[tuple[str, int, float, int]]] = collections.OrderedDict()
with open(sys.argv[1]) as log:
    lines = log.read().splitlines()
for line in lines:
    fields = line.split()
    if len(fields) != 6 or not fields[5].startswith("cpu="):
        continue
    t, pid, compiled, _failed, seconds, cpu = fields
    runs.setdefault(pid, []).append((t, int(compiled), float(seconds), int(cpu[4:])))
for pid, samples in runs.items():
    if len(samples) < 8:
        continue
    a, b = samples[3], samples[-2]
    cpu_s = (b[3] - a[3]) / 100
    jit_s = b[2] - a[2]
    print(
        f"pid {pid} {a[0]}-{b[0]}: {b[1] - a[1]} compilations, JIT {jit_s:.1f} s of the JVM's {cpu_s:.1f} s "
        f"({100 * jit_s / cpu_s:.0f} %); since the JVM started: JIT {b[2]:.0f} s of {b[3] / 100:.0f} s"
    )
