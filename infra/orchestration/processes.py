"""The pipeline's processes as children of this one: the stream job, the producer (in a thread or a process),
and what the job says of itself on its metrics port."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel

import producers
from core import ledger
from core.exceptions import ServiceUnhealthy
from core.kafka import Offsets
from core.settings import Settings, json_variable, settings_env
from infra.orchestration.supervisor import die_with_parent
from infra.runtime.logs import rotate
from producers.manifest import Manifest
from producers.options import ProduceOptions
from producers.producer import ProduceResult
from streaming.offsets import checkpoint_query_id
from streaming.options import StreamOptions

log = logging.getLogger(__name__)


def child_env(settings: Settings, **models: BaseModel) -> dict[str, str]:
    """A child process's environment: this one's, the whole settings, and each options model whole as JSON
    (``stream=…`` travels as SHOPSTREAM_STREAM_OPTIONS_JSON): nothing is re-parsed from flags."""
    carried = {json_variable(group): model.model_dump_json() for group, model in models.items()}
    return {**os.environ, **settings_env(settings), **carried}


class StreamProcess:
    """The streaming job as a child process, with its log in .runtime/logs/stream.log."""

    def __init__(self, settings: Settings, options: StreamOptions):
        self.ready_file = settings.runtime_dir / "run" / f"{options.pipeline}.ready"
        self.settings = settings
        self.options = options.model_copy(
            update={"ready_file": self.ready_file, "checkpoint_dir": options.checkpoint(settings)}
        )
        self.log_file = settings.runtime_dir / "logs" / "stream.log"
        self.proc: subprocess.Popen | None = None

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "infra", "stream"]

    def start(self, timeout: float = 180.0) -> None:
        self.ready_file.unlink(missing_ok=True)
        self.ready_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        rotate(self.log_file, self.settings.log_max_mb * 1024 * 1024, self.settings.log_keep)
        with open(self.log_file, "ab") as log_out:
            # If this process dies (a crash, a kill), the job stops cleanly after its batch rather than run on
            # orphaned, holding its metrics port.
            self.proc = subprocess.Popen(
                self.argv(),
                stdout=log_out,
                stderr=subprocess.STDOUT,
                env=self.env(),
                preexec_fn=die_with_parent(signal.SIGTERM),
            )
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            if self.proc.poll() is not None:
                raise ServiceUnhealthy(
                    f"{self.log_file.stem} exited during start-up (code {self.proc.returncode}): see {self.log_file}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ServiceUnhealthy(f"{self.log_file.stem} did not start within {timeout:.0f}s: see {self.log_file}")
            time.sleep(0.2)

    def env(self) -> dict[str, str]:
        """The whole settings and the whole stream options: nothing is re-parsed from flags."""
        return child_env(self.settings, stream=self.options)

    def pipeline_key(self) -> str:
        return f"{self.options.pipeline}:{checkpoint_query_id(self.options.checkpoint(self.settings))}"

    #: How the run summary finds what this consumer committed: "ledger" (its sink_ledger rows, by
    #: ``pipeline_key``) or "stored" (a benchmark peer's stock sink: the stored rows themselves).
    accounting = "ledger"

    def committed_offsets(self, cur) -> Offsets:
        """{topic: {partition: next offset}} committed so far, read with ``cur``."""
        return ledger.committed_offsets(cur, self.pipeline_key())

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 60.0) -> int | None:
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait()


class Producing(threading.Thread):
    """``producers.run`` in a thread beside the job (fault tests, chaos): ``join()`` then read ``result``; a
    producer that failed re-raises its error there instead of leaving no result. ``finish()`` ends the run early
    once what it was for has happened (what was acknowledged so far is its result)."""

    def __init__(self, settings: Settings, options: ProduceOptions):
        super().__init__(name="producer", daemon=True)
        self.settings, self.options = settings, options
        self._result: ProduceResult | None = None
        self._error: BaseException | None = None
        self._finished = threading.Event()  # not _stop: Thread has a method of that name

    def finish(self, timeout: float | None = None) -> None:
        self._finished.set()
        self.join(timeout)

    def run(self) -> None:
        try:
            self._result = producers.run(self.settings, self.options, stop=self._finished)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever reads the result
            self._error = exc

    @property
    def result(self) -> ProduceResult:
        if self._error is not None:
            raise self._error
        if self._result is None:
            raise RuntimeError("the producer has not finished: join() it first")
        return self._result


class ProducerProcess:
    """`shopstream produce` as a child process (chaos's producer kill): ``start()``, ``join()`` and ``result``
    as :class:`Producing`, plus ``kill()`` (SIGKILL) and ``resume()`` (`produce --resume` on its manifest)."""

    def __init__(self, settings: Settings, options: ProduceOptions, manifest: Path):
        self.settings, self.manifest = settings, manifest
        self.options = options.model_copy(update={"manifest_path": manifest})
        self.log_file = settings.runtime_dir / "logs" / "producer.log"
        self.proc: subprocess.Popen | None = None

    def _spawn(self, options: ProduceOptions) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        rotate(self.log_file, self.settings.log_max_mb * 1024 * 1024, self.settings.log_keep)
        env = child_env(self.settings, produce=options)
        with open(self.log_file, "ab") as log_out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "infra", "produce"],
                stdout=log_out,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=die_with_parent(signal.SIGTERM),
            )

    def start(self) -> None:
        self._spawn(self.options)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def resume(self) -> None:
        self._spawn(ProduceOptions(resume=self.manifest))

    def join(self, timeout: float | None = None) -> None:
        self.proc.wait(timeout)

    @property
    def result(self) -> ProduceResult:
        if self.proc is None or self.proc.returncode is None:
            raise RuntimeError("the producer has not finished: join() it first")
        if self.proc.returncode != 0:
            raise ServiceUnhealthy(f"the producer exited with code {self.proc.returncode}: see {self.log_file}")
        manifest = Manifest.read(self.manifest)
        return ProduceResult(manifest, (manifest.journal or {}).get("elapsed_s", 0.0), stopped_early=False)


def job_metrics(settings: Settings, port: int | None = None) -> dict[str, float]:
    """The stream job's own /metrics (or a standby driver's, on its ``port``): each sample's value by name, label
    sets summed, and restarts also as ``restarts:<reason>``. Empty while the job's process is down (or serves no
    metrics)."""
    port = settings.stream_metrics_port if port is None else port
    if not port:
        return {}
    try:
        text = httpx.get(f"http://{settings.host}:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return {}
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
            if sample.name == "shopstream_stream_restarts_total":
                key = f"restarts:{sample.labels['reason']}"
                values[key] = values.get(key, 0.0) + sample.value
    return values


def job_health(settings: Settings) -> tuple[bool, str]:
    """Whether the stream job is healthy, from its own signals, and one line saying why (or why not)."""
    m = job_metrics(settings)
    where = f"{settings.host}:{settings.stream_metrics_port}"
    if not m:
        return False, f"the stream job does not answer on {where}: start it with `shopstream stream`"
    if not m.get("shopstream_stream_query_active"):
        return False, "the stream job's query is not running (warming up or restarting)"
    if m.get("shopstream_sink_retrying"):
        return False, "the sink is retrying a micro-batch: PostgreSQL or the dead-letter topic is away"
    if m.get("shopstream_stream_stalled"):
        return False, "the stream job is stalled: input waits in Kafka and nothing has committed"
    last = m.get("shopstream_sink_last_commit_timestamp_seconds") or 0
    age = f"last commit {time.time() - last:.0f} s ago" if last else "no commit yet"
    return True, f"the stream job is healthy ({age})"
