"""The run harness: the one owner of a run's lifecycle.

log-end offsets → produce → log-end offsets → drain until the ledger holds every produced offset → summary.
`run`, `bench e2e`, `bench step`, `bench catchup`, `chaos` and the tests all go through it, so that each has the
same drain rule and the same typed result. A ``Sandbox`` gives a run topics, a database and a checkpoint of its
own and removes them afterwards (benchmarks, chaos, tests); `run` uses the user's own.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import producers
import schemas
from core.database import connect
from core.exceptions import ServiceUnhealthy
from core.kafka import Offsets, caught_up, log_end_offsets
from core.settings import Settings
from db.migrate import migrate
from infra.orchestration.processes import StreamProcess
from infra.runtime.services.kafka import grant_pipeline_access, revoke_pipeline_access
from infra.runtime.services.postgres import create_database, drop_database
from infra.runtime.topics import delete_topics, ensure_topics, load_topic_specs
from monitoring.summary import RunScope, RunSummary, summarize
from producers.options import ProduceOptions
from producers.producer import ProduceResult
from streaming.options import StreamOptions

#: The drain's one timeout rule: at least DRAIN_MIN_S, longer for a backlog that even a job at DRAIN_FLOOR_EPS
#: (a tenth of the slowest rate any system here drains at) would still be working through. A job that dies ends
#: the wait at once, so a generous deadline costs nothing when things go well.
DRAIN_MIN_S = 180.0
DRAIN_FLOOR_EPS = 500.0


def drain_timeout(backlog: int) -> float:
    return max(DRAIN_MIN_S, backlog / DRAIN_FLOOR_EPS)


def backlog(end: Offsets, committed: Offsets) -> int:
    """Records between the committed offsets and ``end``."""
    return sum(
        max(offset - committed.get(topic, {}).get(part, 0), 0)
        for topic, parts in end.items()
        for part, offset in parts.items()
    )


def wait_for_committed(
    settings: Settings,
    end: Offsets,
    stream: StreamProcess,
    timeout: float | None = None,
    on_wait: Callable[[Offsets], None] | None = None,
) -> None:
    """Block until what ``stream`` committed (its ledger's newest end offsets, or a stock sink's stored rows)
    reaches ``end`` (timeout: ``drain_timeout`` of the backlog)."""
    conn = connect(settings, "reader")
    conn.autocommit = True
    deadline: float | None = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            with conn.cursor() as cur:
                committed = stream.committed_offsets(cur)
            if deadline is None:
                timeout = drain_timeout(backlog(end, committed))
                deadline = time.monotonic() + timeout
            if on_wait:
                on_wait(committed)
            if caught_up(committed, end):
                return
            if not stream.alive():
                raise ServiceUnhealthy(f"the streaming job stopped before catching up: see {stream.log_file}")
            if time.monotonic() > deadline:
                raise ServiceUnhealthy(
                    f"the consumer's commits did not catch up with the log end within {timeout:.0f}s: see {stream.log_file}"
                )
            time.sleep(0.5)
    finally:
        conn.close()


@dataclass(frozen=True)
class Sandbox:
    """Settings whose topics and database are the sandbox's own, and stream options with its own pipeline name and
    checkpoint."""

    settings: Settings
    options: StreamOptions


@contextlib.contextmanager
def sandbox(
    settings: Settings,
    *,
    kind: str = "bench",
    partitions: int | None = None,
    checkpoint: Path | None = None,
    **stream: object,
) -> Iterator[Sandbox]:
    """Topics (``partitions`` per event topic, else the spec's), a migrated database ``<kind>_<name>`` and a
    checkpoint of a fresh name; all removed afterwards. ``stream`` overrides the job's options."""
    name = f"{kind[0]}{uuid.uuid4().hex[:9]}"
    cfg = settings.model_copy(update={"topic_prefix": name, "postgres_db": f"{kind}_{name}"})
    specs = load_topic_specs()
    if partitions:
        specs = [replace(s, partitions=partitions) if s.name != "dead-letter" else s for s in specs]
    ensure_topics(cfg, name, specs)
    grant_pipeline_access(cfg, name, pipeline=name)  # what the SASL_SSL listener's user may do with them
    create_database(cfg, cfg.postgres_db)
    checkpoint = checkpoint or cfg.runtime_dir / kind / name
    try:
        migrate(cfg)
        options = StreamOptions.model_validate(
            {"master": "local[2]", "pipeline": name, "checkpoint_dir": checkpoint, **stream}
        )
        yield Sandbox(cfg, options)
    finally:
        drop_database(cfg, cfg.postgres_db)
        delete_topics(cfg, name, specs)
        revoke_pipeline_access(cfg, name, pipeline=name)
        shutil.rmtree(checkpoint, ignore_errors=True)


class PipelineRun:
    """One run against a consumer (the stream job, or a benchmark's peer): mark the log end, produce, mark it
    again, drain, summarise. Each step can also be taken by hand (a fault test produces in a thread while it kills
    the job): ``mark_start`` / ``mark_end`` take the offsets, ``drain`` and ``summary`` use them."""

    def __init__(self, settings: Settings, consumer: StreamProcess, late_threshold_s: float | None = None):
        self.settings, self.consumer = settings, consumer
        self.late_threshold_s = consumer.options.late_threshold_s if late_threshold_s is None else late_threshold_s
        self.topics = list(schemas.event_topics(settings).values())
        self.start: Offsets | None = None
        self.end: Offsets | None = None
        self.drain_s: float | None = None

    def mark_start(self) -> Offsets:
        self.start = log_end_offsets(self.settings, self.topics)
        return self.start

    def mark_end(self) -> Offsets:
        self.end = log_end_offsets(self.settings, self.topics)
        return self.end

    def produce(self, options: ProduceOptions, **kwargs: object) -> ProduceResult:
        """``producers.run`` between the two marks (``kwargs``: its progress and metrics port)."""
        if self.start is None:
            self.mark_start()
        result = producers.run(self.settings, options, **kwargs)  # type: ignore[arg-type]
        self.mark_end()
        return result

    def drain(self, timeout: float | None = None, on_wait: Callable[[Offsets], None] | None = None) -> float:
        """Wait until the ledger holds every offset up to the end mark; the seconds it took."""
        end = self.end if self.end is not None else self.mark_end()
        began = time.monotonic()
        wait_for_committed(self.settings, end, self.consumer, timeout, on_wait)
        self.drain_s = time.monotonic() - began
        return self.drain_s

    @property
    def scope(self) -> RunScope:
        if self.start is None or self.end is None:
            raise RuntimeError("mark the run's start and end (or produce) before reading its scope")
        return RunScope(self.start, self.end, self.consumer.pipeline_key(), self.consumer.accounting)

    def summary(self, unique_events: int | None = None) -> RunSummary:
        """The measured summary; ``unique_events`` defaults to every offset in scope (valid events, no
        duplicates sent)."""
        scope = self.scope
        unique = scope.produced if unique_events is None else unique_events
        return summarize(self.settings, scope, unique, self.late_threshold_s)
