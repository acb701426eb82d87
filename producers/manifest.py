"""What the producer actually got into Kafka, by data-quality outcome.

Counted from delivery reports, not from intentions: an event counts once the broker
acknowledged it. Tests and `shopstream run` compare the sink's accounting with this.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from schemas.quality import CATEGORIES


@dataclass
class Manifest:
    run_id: str
    seed: int
    acked: Counter = field(default_factory=Counter)  # (category, rule) -> n
    failed: Counter = field(default_factory=Counter)  # (category, rule) -> n
    generated: int = 0
    late: int = 0
    journal: dict | None = None  # while a run goes on: what `produce --resume` needs (producers.resume)
    timeline: Counter = field(default_factory=Counter)  # events sent, by their event time's Unix second

    @property
    def produced(self) -> int:
        return sum(self.acked.values())

    @property
    def duplicates(self) -> int:
        return self.acked[("duplicate", "")]

    @property
    def unique_events(self) -> int:
        return self.produced - self.duplicates

    @property
    def valid(self) -> int:
        return self.acked[("valid", "")]

    def quarantine_expected(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {c: {} for c in CATEGORIES}
        for (category, rule), n in sorted(self.acked.items()):
            if category in out:
                out[category][rule] = n
        return out

    def to_dict(self, timeline: bool = True) -> dict:
        quarantine = self.quarantine_expected()
        return {
            "run_id": self.run_id,
            "seed": self.seed,
            "generated": self.generated,
            "produced": self.produced,
            "unique_events": self.unique_events,
            "duplicates": self.duplicates,
            "valid": self.valid,
            "late": self.late,
            "failed": sum(self.failed.values()),
            "quality": {c: sum(rules.values()) for c, rules in quarantine.items()},
            "quality_by_rule": quarantine,
            "acked": [[category, rule, n] for (category, rule), n in sorted(self.acked.items())],
            **({"timeline": {str(second): n for second, n in sorted(self.timeline.items())}} if timeline else {}),
            **({"journal": self.journal} if self.journal is not None else {}),
        }

    def write(self, path: Path, timeline: bool = True) -> None:
        """Atomically (a rename), so a process killed while writing leaves the previous version whole. The
        timeline (a row per second of the run) can be left out of the journal's writes each second: a resumed
        run counts it again from the events it makes again."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(json.dumps(self.to_dict(timeline), indent=2) + "\n")
        partial.replace(path)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        data = json.loads(path.read_text())
        acked = Counter({(category, rule): n for category, rule, n in data["acked"]})
        return cls(
            data["run_id"],
            data["seed"],
            acked,
            Counter({("", ""): data["failed"]}) if data["failed"] else Counter(),
            data["generated"],
            data["late"],
            data.get("journal"),
            Counter({int(second): n for second, n in data.get("timeline", {}).items()}),
        )
