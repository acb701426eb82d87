"""From a generated event to the bytes on the topic: its schema version's serializer, and
for a schema fault, the break the generator chose (producers.faults.break_bytes)."""

from __future__ import annotations

import random

from producers import faults
from producers.generator import GeneratedEvent
from producers.serialization import ConfluentAvroSerializer


class EventEncoder:
    def __init__(self, serializers: dict[tuple[str, int], ConfluentAvroSerializer], seed: int):
        self.serializers = serializers
        self.rng = random.Random(seed + 2)

    def __call__(self, event: GeneratedEvent) -> bytes:
        value = self.serializers[(event.family, event.version)](event.record)
        if event.category == "schema":
            value = faults.break_bytes(event.rule, value, self.rng)
        return value
