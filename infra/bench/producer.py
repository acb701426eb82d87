"""`shopstream bench producer`: sustained events/s of one producer process, acks=all.

Topics get a fresh prefix per run so earlier data does not skew the broker. CPU time
is the process's own (user + system), so "events per CPU-second" says what one core
buys, independent of how busy the rest of the machine was.
"""

from __future__ import annotations

import resource
import time
import uuid
from dataclasses import asdict, dataclass

import producers
from core.settings import Settings
from infra.runtime.topics import ensure_topics, load_topic_specs
from producers.options import NO_FAULTS, FaultRatios, ProduceOptions


@dataclass
class ProducerBenchResult:
    events: int
    failed: int
    seconds: float
    events_per_second: float
    cpu_seconds: float
    events_per_cpu_second: float
    cpu_utilisation: float
    topic_prefix: str

    def to_dict(self) -> dict:
        return asdict(self)


def run(
    settings: Settings, duration_s: float = 20.0, rate: float = 0.0, with_faults: bool = True
) -> ProducerBenchResult:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    bench = settings.model_copy(update={"topic_prefix": prefix})
    ensure_topics(bench, prefix, load_topic_specs())
    options = ProduceOptions(
        rate=rate,
        duration_s=duration_s,
        run_id=prefix,
        duplicate_ratio=0.01 if with_faults else 0,
        faults=FaultRatios() if with_faults else NO_FAULTS,
    )
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic()
    result = producers.run(bench, options)
    wall = time.monotonic() - wall
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    m = result.manifest
    return ProducerBenchResult(
        events=m.produced,
        failed=sum(m.failed.values()),
        seconds=round(result.seconds, 2),
        events_per_second=round(result.events_per_second),
        cpu_seconds=round(cpu, 2),
        events_per_cpu_second=round(m.produced / cpu) if cpu else 0,
        cpu_utilisation=round(cpu / wall, 2),
        topic_prefix=prefix,
    )
