"""Resuming a producer run that was killed: what of it is in Kafka already.

A producer given a manifest path keeps that file as the run's journal while it runs: its
options (with the run id), the topics' log-end offsets before its first send, and its
progress, rewritten every second. Every event carries a ``run_seq`` header,
``<run id>:<seq>:<clock µs>``: which run made it, its place in the run, and the clock's
reading it was made at.

``shopstream produce --resume MANIFEST`` reads the journal and scans the topics from those
offsets for the run's headers. It then makes the run's events again, in order, from the
same seeds. An event found in Kafka is made with its recorded clock reading, so it comes
out byte for byte as it went in, and is counted without being sent again. An event not
found (in flight when the process died, or never sent) is sent. The run then goes on to
its end. Nothing the killed process got into Kafka is sent twice, nothing it lost is
missing, and the manifest counts exactly what the topics hold.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaError, TopicPartition
from pydantic import ValidationError

from core import kafka
from core.kafka import Offsets, offsets_from_json
from core.settings import Settings
from producers.exceptions import ProducerError
from producers.options import ProduceOptions

HEADER = "run_seq"
SCAN_IDLE_S = 60.0  # no record this long while the scan expects some: Kafka is away (the producer's own timeout)


def header(run_id: str, seq: int, generated_us: int) -> tuple[str, bytes]:
    return HEADER, f"{run_id}:{seq}:{generated_us}".encode()


@dataclass
class Journal:
    """What a resumed run needs of the killed one."""

    options: ProduceOptions
    start_offsets: Offsets
    elapsed_s: float
    state: str  # "producing", "stopped" (SIGINT/SIGTERM) or "done"

    def to_dict(self) -> dict:
        return {
            "state": self.state,
            "elapsed_s": round(self.elapsed_s, 3),
            "start_offsets": self.start_offsets,
            "options": self.options.model_dump(mode="json", exclude={"resume", "manifest_path"}),
        }


def load(path: Path) -> Journal:
    """The journal in a manifest file, or a one-line ProducerError that says why it cannot be resumed."""
    try:
        data = json.loads(path.read_text())["journal"]
        journal = Journal(
            ProduceOptions(**data["options"], manifest_path=path),
            offsets_from_json(data["start_offsets"]),
            float(data["elapsed_s"]),
            data["state"],
        )
    except FileNotFoundError:
        raise ProducerError(f"{path} does not exist: give the --manifest of the run to resume") from None
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise ProducerError(
            f"{path} holds no producer journal ({type(exc).__name__}): give the --manifest file "
            f"of a run started with --manifest"
        ) from None
    if journal.state == "done":
        raise ProducerError(f"the run in {path} finished: there is nothing to resume")
    return journal


def delivered(
    settings: Settings, journal: Journal, topics: list[str], progress: Callable[[int], None] | None = None
) -> dict[int, int]:
    """The run's events in Kafka, as {seq: clock µs}, read from the journal's offsets to the log end."""
    run_id = journal.options.run_id
    prefix = f"{run_id}:".encode()
    ends = kafka.log_end_offsets(settings, topics)
    todo = {
        (t, p): end
        for t, parts in ends.items()
        for p, end in parts.items()
        if end > journal.start_offsets.get(t, {}).get(p, 0)
    }
    found: dict[int, int] = {}
    if not todo:
        return found
    consumer = kafka.consumer(
        settings, f"shopstream-resume-{run_id}", {"enable.auto.commit": False, "enable.partition.eof": True}
    )
    with contextlib.closing(consumer):
        consumer.assign([TopicPartition(t, p, journal.start_offsets.get(t, {}).get(p, 0)) for t, p in todo])
        idle_since = time.monotonic()
        while todo:
            messages = consumer.consume(10_000, timeout=1.0)
            if not messages and time.monotonic() - idle_since > SCAN_IDLE_S:
                raise ProducerError(
                    f"Kafka at {settings.kafka_bootstrap} stopped answering while the run's "
                    f"events were read back: resume again once it is up"
                )
            for msg in messages:
                idle_since = time.monotonic()
                where = (msg.topic() or "", msg.partition() or 0)
                offset = msg.offset() or 0
                error = msg.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise ProducerError(f"reading {where[0]} back failed: {error.str()}")
                    if offset >= todo.get(where, 0):
                        todo.pop(where, None)
                    continue
                for key, value in kafka.header_pairs(msg):
                    if key == HEADER and isinstance(value, bytes) and value.startswith(prefix):
                        _, seq, generated_us = value.decode().rsplit(":", 2)
                        found[int(seq)] = int(generated_us)
                if offset + 1 >= todo.get(where, 0):
                    todo.pop(where, None)
            if progress:
                progress(len(found))
    return found
