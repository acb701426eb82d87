"""Dead letters, re-driven: which to send back, sending them, and waiting for the stream job's verdicts.

A dead letter goes back to its source topic with a `redrive_of` header naming where it was first quarantined
(streaming.dead_letter.redrive). The job decides: what passes now is stored once and its quarantine row marked
resolved; what fails again is counted on that row. ``status`` reads those verdicts back.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from core.exceptions import ConfigError
from core.settings import Settings
from schemas.quality import CATEGORIES, all_rules
from streaming import dead_letter
from streaming.dead_letter import DeadLetter

#: A letter's state as the quarantine holds it: (resolved, attempts, rule of the latest failure).
Status = tuple[bool, int, str | None]
NEVER: Status = (False, 0, None)


def outcome(status: Status) -> str:
    resolved, attempts, _rule = status
    return "resolved" if resolved else "failing again" if attempts else "waiting"


def by_rule(settings: Settings, since_ms: int | None) -> dict[tuple[str, str], Counter[str]]:
    """{(category, rule): Counter(outcome)} of the dead-letter topic (`dead-letter list`)."""
    letters = dead_letter.read(settings, settings.topic("dead-letter"), since_ms)
    known = dead_letter.status(settings, [x.source for x in letters]) if letters else {}
    rows: dict[tuple[str, str], Counter[str]] = {}
    for letter in letters:
        rows.setdefault((letter.category, letter.rule), Counter())[outcome(known.get(letter.source, NEVER))] += 1
    return rows


@dataclass(frozen=True)
class Selection:
    """The dead letters a re-drive picked: those still open, and how many it picked that were resolved already."""

    open_letters: list[DeadLetter]
    resolved_before: int
    attempts: dict[str, int]  # source -> failed attempts so far, to tell a new verdict from an old one


def select(settings: Settings, rule: str | None, category: str | None, since_ms: int | None) -> Selection:
    rules = sorted({r for _, _, r in all_rules()})
    if rule is not None and rule not in rules:
        raise ConfigError(f"unknown rule {rule!r}: choose one of {', '.join(rules)}")
    if category is not None and category not in CATEGORIES:
        raise ConfigError(f"unknown category {category!r}: choose one of {', '.join(CATEGORIES)}")
    letters = [
        x
        for x in dead_letter.read(settings, settings.topic("dead-letter"), since_ms)
        if (rule is None or x.rule == rule) and (category is None or x.category == category)
    ]
    known = dead_letter.status(settings, [x.source for x in letters])
    open_letters = [x for x in letters if not known.get(x.source, NEVER)[0]]
    attempts = {x.source: known.get(x.source, NEVER)[1] for x in open_letters}
    return Selection(open_letters, len(letters) - len(open_letters), attempts)


def send(settings: Settings, selection: Selection) -> None:
    dead_letter.redrive(settings, selection.open_letters)


@dataclass(frozen=True)
class Verdicts:
    stored: int  # passed now: stored once, quarantine row resolved
    failing_again: int
    not_judged: int  # the job has not read them (yet)


def await_verdicts(settings: Settings, selection: Selection, wait_s: float) -> Verdicts:
    """Poll the quarantine until the job has judged every re-driven letter, or ``wait_s`` has passed."""
    deadline = time.monotonic() + wait_s
    while True:
        now = dead_letter.status(settings, list(selection.attempts))
        judged = {s: v for s, v in now.items() if v[1] > selection.attempts[s]}
        if len(judged) == len(selection.attempts) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    stored = sum(1 for v in judged.values() if v[0])
    return Verdicts(stored, len(judged) - stored, len(selection.attempts) - len(judged))
