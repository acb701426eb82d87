"""The Kafka A/B of 2026-12-05-kafka-serial-gc.md: one shopstream level (30 s after 20 s of warm-up) with a variant
of the brokers' settings. Environment: VARIANT (a label), PROPS (broker properties to add, `;`-separated), JVM
(flags; one naming a GC replaces the G1 flags), BROKERS (3: a cluster of their own; 1: the stack's broker, restarted
with the variant and afterwards without it), RATE (5000), MODE=idle (the 3 nodes' idle CPU and RSS instead)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from core.settings import Settings
from infra.bench import e2e
from infra.runtime.services import kafka

EXTRA_PROPS = [p for p in os.environ.get("PROPS", "").split(";") if p]
EXTRA_JVM = os.environ.get("JVM", "").split()
original_properties, original_command = kafka.Kafka.server_properties, kafka.Kafka.command


def properties(self) -> str:
    return original_properties(self) + "".join(p + "\n" for p in EXTRA_PROPS)


def command(self) -> list[str]:
    argv = original_command(self)
    if any("GC" in flag for flag in EXTRA_JVM):
        argv = [a for a in argv if a not in ("-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+UseSerialGC")]
    return argv[:1] + EXTRA_JVM + argv[1:]


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> int:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS"))
    return int(line.split()[1]) // 1024


IDLE_WINDOW_S = 60.0
SETTLE_SAMPLE_S = 2.0


def settle(pids: dict[str, int], deadline_s: float = 120.0) -> None:
    """Until the nodes' start-up work (JIT, elections, the internal topics) is over: their CPU over two successive
    SETTLE_SAMPLE_S samples within 1 point of a core of each other, or ``deadline_s``."""
    end, last = time.monotonic() + deadline_s, None
    while time.monotonic() < end:
        before, began = sum(cpu_s(p) for p in pids.values()), time.monotonic()
        while time.monotonic() - began < SETTLE_SAMPLE_S:  # one sample's window, polled: a node that dies ends it
            if not all(Path(f"/proc/{p}").exists() for p in pids.values()):
                raise SystemExit(f"a Kafka node ended while its CPU settled: {pids}")
            time.sleep(0.2)
        rate = 100 * (sum(cpu_s(p) for p in pids.values()) - before) / (time.monotonic() - began)
        if last is not None and abs(rate - last) < 1.0:
            return
        last = rate


def main() -> None:
    kafka.Kafka.server_properties, kafka.Kafka.command = properties, command
    s, variant = Settings(), os.environ.get("VARIANT", "base")
    if os.environ.get("MODE") == "idle":
        with e2e.kafka_of(s, 3) as (_, pids):
            pids = {k: p for k, p in pids.items() if p}
            settle(pids)
            before, began = {k: cpu_s(p) for k, p in pids.items()}, time.monotonic()
            while time.monotonic() - began < IDLE_WINDOW_S:  # the measurement window itself
                time.sleep(0.5)
            spent = time.monotonic() - began
            idle = {k: round(100 * (cpu_s(p) - before[k]) / spent, 2) for k, p in pids.items()}
            print(
                json.dumps(
                    {"variant": variant, "idle_cpu_pct": idle, "rss_mb": {k: rss_mb(p) for k, p in pids.items() if p}}
                )
            )
        return
    brokers, rate = int(os.environ.get("BROKERS", "3")), float(os.environ.get("RATE", "5000"))
    node = kafka.Kafka(s)
    if brokers == 1:
        node.stop()
        node.start()
        node.after_start()
    try:
        lv = e2e.run_level(s, "shopstream", rate, 30, warmup_s=20, brokers=brokers)
    finally:
        if brokers == 1 and EXTRA_JVM:
            kafka.Kafka.command = original_command
            node.stop()
            node.start()
            node.after_start()
    result = {"variant": variant, "props": EXTRA_PROPS, "jvm": EXTRA_JVM, "input": lv.input_rate}
    result |= {"output": lv.output_rate, "p95_ms": lv.e2e_ms.get("p95"), "drain_s": lv.drain_s}
    result |= {"sustainable": lv.sustainable, "lost": lv.lost, "dup": lv.duplicates_in_db, "resources": lv.resources}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
