"""The event schemas: `.avsc` files in this folder, the one copy that the producer,
the registry registration and the Spark job all load."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import fastavro

SCHEMA_DIR = Path(__file__).resolve().parent

# Event family -> its topic (in infra/runtime/topics.yaml) and schema versions, oldest first.
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "clickstream": ("clickstream", ("clickstream_event.avsc", "clickstream_event.v2.avsc")),
    "orders": ("orders", ("order_event.avsc",)),
}


@dataclass(frozen=True)
class EventSchema:
    family: str
    version: int
    path: Path = field(compare=False)

    @cached_property
    def text(self) -> str:
        return self.path.read_text()

    @cached_property
    def definition(self) -> dict:
        return json.loads(self.text)

    @cached_property
    def parsed(self):
        """fastavro's parsed form, for the writer (parse once, reuse forever)."""
        return fastavro.parse_schema(self.definition)

    @property
    def topic_name(self) -> str:
        return FAMILIES[self.family][0]


def versions(family: str) -> list[EventSchema]:
    _, files = FAMILIES[family]
    return [EventSchema(family, i + 1, SCHEMA_DIR / name) for i, name in enumerate(files)]


def latest(family: str) -> EventSchema:
    return versions(family)[-1]


def subject(topic: str) -> str:
    """Confluent TopicNameStrategy: the value schema of ``topic``."""
    return f"{topic}-value"


def event_topics(settings) -> dict[str, str]:
    """{family: topic} for every event family in the catalogue, under the settings' topic prefix."""
    return {family: settings.topic(latest(family).topic_name) for family in FAMILIES}
