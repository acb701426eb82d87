"""`shopstream run`: the whole pipeline once, end to end, then its measured summary.

1. `up` and `migrate`; load the dimension tables from the generator's pools.
2. Start the streaming job (a child process, so Spark's driver and the producer do not
   share one interpreter) and wait until its query runs.
3. Produce at the given rate and duration, with the default bad-data mix.
4. Wait until the ledger has committed every offset that was produced (the run harness's drain).
5. Summarise from Kafka offsets, the ledger and SQL over the stored rows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.kafka import Offsets
from core.settings import Settings
from db.migrate import migrate
from infra.orchestration.harness import PipelineRun
from infra.orchestration.processes import StreamProcess, job_metrics
from infra.runtime import stack, watchdog
from monitoring import exporter
from monitoring.summary import RunSummary
from producers.dimensions import load_dimensions
from producers.options import ProduceOptions
from streaming.options import StreamOptions


class RunOptions(BaseModel):
    """`shopstream run`'s own options; it also takes the produce and stream options."""

    model_config = ConfigDict(extra="forbid")

    summary_json: Path | None = Field(None, description="also write the summary as JSON here")


@dataclass(frozen=True)
class ProducerFigures:
    events_per_second: int
    seconds: float
    acknowledged: int
    failed: int


@dataclass(frozen=True)
class Restarts:
    stream: dict[str, int]  # the job's process restarts, by reason
    sink_retries: int
    services: dict[str, int]  # local services the watchdog restarted during the run


@dataclass(frozen=True)
class PipelineSummary:
    """`run`'s result: the measured summary, what the producer did, and what restarted on the way. Its JSON is
    the summary's fields with ``producer``, ``manifest_quality`` and ``restarts`` beside them."""

    measured: RunSummary
    producer: ProducerFigures
    manifest_quality: dict[str, int]
    restarts: Restarts

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.measured.to_dict(),
            "producer": asdict(self.producer),
            "manifest_quality": self.manifest_quality,
            "restarts": asdict(self.restarts),
        }


def run_pipeline(
    settings: Settings,
    produce_options: ProduceOptions,
    stream_options: StreamOptions,
    on_step: Callable[[str], None] = lambda s: None,
    on_produce: Callable | None = None,
    on_drain: Callable[[Offsets], None] | None = None,
) -> PipelineSummary:
    started_at = time.time()
    on_step("starting the stack")
    stack.up(settings, watchdog=settings.watchdog)
    on_step("migrating the database")
    migrate(settings)
    load_dimensions(settings, produce_options)
    stream = StreamProcess(settings, stream_options)
    on_step("starting the streaming job (Spark)")
    stream.start()
    exporter_stop = threading.Event()
    threading.Thread(
        target=exporter.run, args=(settings, stream_options.pipeline, 5.0, exporter_stop), name="exporter", daemon=True
    ).start()
    run = PipelineRun(settings, stream)
    try:
        run.mark_start()
        on_step("producing")
        result = run.produce(produce_options, progress=on_produce, metrics_port=settings.producer_metrics_port)
        on_step("waiting for the ledger to catch up with the log end")
        run.drain(on_wait=on_drain)
        job = job_metrics(settings)
    finally:
        stream.stop()
        exporter_stop.set()
    on_step("summarising from Kafka, the ledger and the stored rows")
    manifest = result.manifest
    return PipelineSummary(
        measured=run.summary(manifest.unique_events),
        producer=ProducerFigures(
            events_per_second=round(result.events_per_second),
            seconds=round(result.seconds, 1),
            acknowledged=manifest.produced,
            failed=sum(manifest.failed.values()),
        ),
        manifest_quality=manifest.to_dict()["quality"],
        restarts=Restarts(
            stream={k.split(":", 1)[1]: int(v) for k, v in job.items() if k.startswith("restarts:") and v},
            sink_retries=int(job.get("shopstream_sink_retries_total", 0)),
            services={
                name: r.restarts
                for name, r in watchdog.restarts(settings).items()
                if r.last_restart and r.last_restart >= started_at and r.restarts
            },
        ),
    )
