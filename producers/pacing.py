"""Rate pacing: how many events are due after a while, steady, in bursts or in steps."""

from __future__ import annotations

from collections.abc import Sequence


class Pacer:
    """Keeps a producer at ``rate`` events/s (0 = as fast as possible); ``burst`` alternates
    2 s at 3x the rate with 4 s of quiet, for the same average; ``steps`` ((rate, seconds), …)
    replace ``rate`` with a step load, whose last rate holds after the last step."""

    def __init__(self, rate: float, burst: bool = False, steps: Sequence[tuple[float, float]] = ()):
        self.rate, self.burst, self.steps = rate, burst, tuple(steps)

    def rate_at(self, elapsed: float) -> float:
        for rate, seconds in self.steps:
            if elapsed < seconds:
                return rate
            elapsed -= seconds
        return self.steps[-1][0] if self.steps else self.rate

    def due(self, elapsed: float) -> float:
        """How many events should have been sent after ``elapsed`` seconds."""
        if self.steps:
            due = 0.0
            for rate, seconds in self.steps:
                span = min(elapsed, seconds)
                due, elapsed = due + rate * span, elapsed - span
            return due + max(elapsed, 0.0) * self.steps[-1][0]
        if not self.burst:
            return elapsed * self.rate
        cycles, within = divmod(elapsed, 6.0)
        return cycles * 6.0 * self.rate + min(within, 2.0) * 3 * self.rate

    def pause(self, sent: int, elapsed: float) -> float:
        """Seconds to wait before sending more (0 when behind or unpaced); short, so polling goes on."""
        rate = self.rate_at(elapsed)
        if not rate:
            return 0.0
        due = self.due(elapsed)
        if sent < due:
            return 0.0
        return min(0.005, max(0.0005, (sent - due) / max(rate, 1)))
