"""The retry policy: every backoff in the platform, defined once.

Each layer that rides out a fault waits between tries, doubling from ``first_s`` up to ``max_s``; a layer that ran
steadily for a while starts again from ``first_s``. The numbers live here and nowhere else: the code reads them, and
docs/architecture.md's table of them is checked against this module by a test.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenacity import wait_exponential

#: A layer that ran this long since its last restart is steady again: its next fault starts the backoff over.
STEADY_AFTER_S = 60.0


@dataclass(frozen=True)
class Backoff:
    """Waits that double from ``first_s`` up to ``max_s``."""

    name: str
    first_s: float
    max_s: float
    layer: str  # what retries, for the docs' table

    def next(self, delay: float, max_s: float | None = None) -> float:
        """The wait after ``delay``; ``max_s`` overrides the cap where a setting does (the watchdog's)."""
        return min(delay * 2, self.max_s if max_s is None else max_s)

    def tenacity(self) -> wait_exponential:
        """The same waits for a tenacity ``Retrying``: first_s, 2 × first_s, … up to max_s."""
        return wait_exponential(multiplier=self.first_s, max=self.max_s)


KAFKA_CALL = Backoff("Kafka call", 0.1, 1.0, "a call to Kafka whose answer is retriable (`core.kafka.retrying`)")
SINK_BATCH = Backoff("sink batch", 0.2, 5.0, "the sink's micro-batch transaction, for up to `--sink-retry` s")
QUERY_RESTART = Backoff("query restart", 1.0, 10.0, "the streaming query, restarted inside a living driver")
JOB_PROCESS = Backoff("job process", 1.0, 30.0, "the stream job's process, restarted by its supervisor")
LOCAL_SERVICE = Backoff(
    "local service", 1.0, 10.0, "a local service the watchdog starts again (cap: `SHOPSTREAM_WATCHDOG_MAX_BACKOFF_S`)"
)

POLICIES = (KAFKA_CALL, SINK_BATCH, QUERY_RESTART, JOB_PROCESS, LOCAL_SERVICE)
