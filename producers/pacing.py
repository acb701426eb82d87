"""Rate pacing: how many events are due after a while, steady or in bursts."""

from __future__ import annotations


class Pacer:
    """Keeps a producer at ``rate`` events/s (0 = as fast as possible); ``burst`` alternates
    2 s at 3x the rate with 4 s of quiet, for the same average."""

    def __init__(self, rate: float, burst: bool = False):
        self.rate, self.burst = rate, burst

    def due(self, elapsed: float) -> float:
        """How many events should have been sent after ``elapsed`` seconds."""
        if not self.burst:
            return elapsed * self.rate
        cycles, within = divmod(elapsed, 6.0)
        return cycles * 6.0 * self.rate + min(within, 2.0) * 3 * self.rate

    def pause(self, sent: int, elapsed: float) -> float:
        """Seconds to wait before sending more (0 when behind or unpaced); short, so polling goes on."""
        if not self.rate:
            return 0.0
        due = self.due(elapsed)
        if sent < due:
            return 0.0
        return min(0.005, max(0.0005, (sent - due) / max(self.rate, 1)))
