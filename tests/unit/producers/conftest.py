import itertools
import time

import pytest

from producers.generator import EventGenerator
from producers.options import NO_FAULTS, FaultRatios, ProduceOptions

#: The instant every test clock starts from: now, read once, so two generators built in
#: one test session make the same events and their times stay close to the real clock.
SESSION_START = float(int(time.time()))


class TickingClock:
    """A deterministic clock: 1 ms per call from SESSION_START."""

    def __init__(self, start: float = SESSION_START):
        self._ticks = itertools.count()
        self.start = start

    def __call__(self) -> float:
        return self.start + next(self._ticks) / 1000


def make_generator(**overrides) -> EventGenerator:
    fields = {
        "count": 1,
        "seed": 7,
        "run_id": "unit",
        "customers": 300,
        "products": 120,
        "sessions": 50,
        "faults": NO_FAULTS,
        "duplicate_ratio": 0.0,
    }
    fields.update(overrides)
    return EventGenerator(ProduceOptions(**fields), clock=TickingClock())


@pytest.fixture
def generator_factory():
    return make_generator


ALL_FAULTS = FaultRatios(schema=0.02, data_type=0.03, completeness=0.04, business_rules=0.05)
