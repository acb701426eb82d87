"""Where the JIT's time goes: `jfr print --json --events jdk.Compilation REC.jfr > comp.json; python this comp.json`.

The recording: `jcmd <job JVM> JFR.start duration=60s settings=comp.jfc filename=REC.jfr`, where comp.jfc is the
JDK's lib/jfr/default.jfc with jdk.Compilation's threshold set to 0 ms (every compilation, not only those over 1 s).
"""

import collections
import json
import re
import sys


def seconds(iso: str) -> float:
    m = re.match(r"PT(?:(\d+)M)?([\d.]+)S", iso)
    return int(m.group(1) or 0) * 60 + float(m.group(2)) if m else 0.0


with open(sys.argv[1]) as recording:
    events = json.load(recording)["recording"]["events"]
rows = []
for event in events:
    v = event["values"]
    rows.append((seconds(v["duration"]), v["compileLevel"], v["method"]["type"]["name"] + "." + v["method"]["name"]))
print(f"{len(rows)} compilations, {sum(r[0] for r in rows):.1f} s")
levels: collections.Counter[int] = collections.Counter()
packages: collections.Counter[str] = collections.Counter()
for duration, level, name in rows:
    levels[level] += duration
    packages[".".join(re.sub(r"\$.*", "", name.rsplit(".", 1)[0]).split("/")[:5])] += duration
print("by tier (s):", {k: round(v, 1) for k, v in sorted(levels.items())})
print(f"Spark's generated classes: {sum(r[0] for r in rows if 'Generated' in r[2]):.1f} s")
print("slowest:")
for duration, level, name in sorted(rows, reverse=True)[:15]:
    print(f"  {duration:.3f} s  tier {level}  {name}")
print("by package (s):")
for name, duration in packages.most_common(12):
    print(f"  {duration:.1f}  {name}")
