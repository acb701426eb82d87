"""`shopstream replay --from TIME [--to TIME]`: the three steps of a replay in one command.

1. The pipeline's stream job must not run (an unbounded replay *is* the live job, rewound). A bounded one
   (``--to``) runs beside it instead, under a pipeline name of its own (``<pipeline>-replay``): its own ledger
   rows, group and checkpoint, so the live pipeline's resume point never moves.
2. The consumer group is reset with Kafka's own tool (`kafka-consumer-groups --reset-offsets --to-datetime …
   --execute`, or ``--to-earliest``), exactly as a person would.
3. The job starts from the group's offsets (``--from-group-offsets``). A bounded replay reads only below the
   offsets that ``--to`` names, stops there by itself and reports what it read, stored anew and skipped.

Nothing is stored twice: facts conflict on (event_time, event_id), the quarantine on the source coordinates, the
KPIs are upserted from inserted rows only. A bounded replay does not publish to the dead-letter topic (the
first pass did) and serves no metrics, so the Prometheus counters of the live job stay as they are.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

import schemas
from core.exceptions import ConfigError, ShopstreamError
from core.kafka import Offsets, caught_up
from core.settings import Settings
from infra.orchestration.processes import job_metrics
from infra.runtime.jvm import spark_jars
from infra.runtime.services.kafka import tool_command
from streaming.job import StreamResult
from streaming.job import run as run_stream
from streaming.offsets import group_offsets, offsets_at
from streaming.options import StreamOptions


@dataclass(frozen=True)
class Window:
    since_ms: int | None  # None: the earliest offset kept
    until_ms: int | None  # None: unbounded (the live job, rewound)


def parse_window(since: str, until: str | None, now: dt.datetime | None = None) -> Window:
    """``--from`` and ``--to`` as epoch milliseconds; a bad one is a ConfigError of one line."""
    now = now or dt.datetime.now(dt.UTC)
    since_at = None if since.strip().lower() == "earliest" else instant(since, "--from")
    until_at = instant(until, "--to") if until else None
    for flag, at in (("--from", since_at), ("--to", until_at)):
        if at is not None and at > now:
            raise ConfigError(
                f"{flag} {at:%Y-%m-%d %H:%M:%S} UTC is in the future: give a time before now "
                f"({now:%Y-%m-%d %H:%M:%S} UTC)"
            )
    if since_at is not None and until_at is not None and until_at <= since_at:
        raise ConfigError(
            f"--to {until_at:%Y-%m-%d %H:%M:%S} is not after --from {since_at:%Y-%m-%d %H:%M:%S}: "
            f"give a range that ends after it starts"
        )
    return Window(_ms(since_at), _ms(until_at))


def instant(text: str, flag: str) -> dt.datetime:
    try:
        at = dt.datetime.fromisoformat(text.strip().replace(" ", "T"))
    except ValueError:
        raise ConfigError(
            f"{flag} {text!r} is not a time: use ISO 8601, e.g. 2026-11-30T10:00 (UTC unless it "
            f"says otherwise) or 'earliest'"
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def _ms(at: dt.datetime | None) -> int | None:
    return None if at is None else int(at.timestamp() * 1000)


def reset_group(settings: Settings, group: str, topics: list[str], since_ms: int | None) -> None:
    """Kafka's own `kafka-consumer-groups --reset-offsets … --execute` on ``topics``."""
    if since_ms is None:
        to = ["--to-earliest"]
    else:
        at = dt.datetime.fromtimestamp(since_ms / 1000, dt.UTC)
        to = ["--to-datetime", f"{at:%Y-%m-%dT%H:%M:%S}.{at.microsecond // 1000:03d}Z"]
    args = ["--group", group, *[x for t in topics for x in ("--topic", t)], "--reset-offsets", *to, "--execute"]
    done = subprocess.run(tool_command(settings, "consumer-groups", args), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        detail = next((ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()), "no output")
        raise ShopstreamError(f"kafka-consumer-groups could not reset {group}: {detail}")


def refuse_if_running(settings: Settings, pipeline: str) -> None:
    if job_metrics(settings):
        raise ConfigError(
            f"a stream job answers on {settings.host}:{settings.stream_metrics_port}: stop the "
            f"{pipeline} job first (Ctrl-C or SIGTERM), or give --to for a bounded replay beside it"
        )


@dataclass
class ReplayResult:
    pipeline: str
    start: Offsets
    end: Offsets
    stream: StreamResult | None  # None: the range held nothing

    @property
    def records(self) -> int:
        return sum(
            int(self.end[t][p]) - int(self.start.get(t, {}).get(p, self.end[t][p]))
            for t in self.end
            for p in self.end[t]
        )


def bounded(
    settings: Settings, options: StreamOptions, window: Window, progress: Callable[[dict], None] | None = None
) -> ReplayResult:
    """Replay [since, until) under ``<pipeline>-replay`` and stop at its end."""
    topics = list(schemas.event_topics(settings).values())
    name = f"{options.pipeline}-replay"
    replay = options.model_copy(
        update={
            "pipeline": name,
            "replay_of": options.pipeline,
            "from_group_offsets": True,
            "dead_letter": False,
            "checkpoint_dir": None,
            "stop_when_idle_s": None,
            "supervise": False,
        }
    )
    shutil.rmtree(replay.checkpoint(settings), ignore_errors=True)  # a replay's checkpoint is its own, and spent
    end = offsets_at(settings, topics, window.until_ms)
    reset_group(settings, name, topics, window.since_ms)
    start = group_offsets(settings, name, topics)
    if caught_up(start, end):
        return ReplayResult(name, start, end, None)
    result = run_stream(
        settings,
        replay.model_copy(update={"end_offsets": end}),
        spark_jars(settings.runtime_dir),
        metrics_port=None,
        progress=progress,
    )
    return ReplayResult(name, start, end, result)
