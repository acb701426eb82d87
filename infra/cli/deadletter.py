"""`shopstream dead-letter …`: what is on the dead-letter topic, and sending it back once the cause is fixed."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from typing import Annotated

import typer
from rich.table import Table

from core.exceptions import ConfigError
from infra.cli.app import app, console, settings

dead_letter_app = typer.Typer(
    help="The dead-letter topic: list it by category and rule, re-drive it.", no_args_is_help=True
)
app.add_typer(dead_letter_app, name="dead-letter")


@dead_letter_app.command("list")
def list_letters(
    since: Annotated[
        str | None, typer.Option("--since", help="Only dead letters from this time (ISO 8601, UTC unless it says).")
    ] = None,
) -> None:
    """Dead letters by category and rule, with what became of those re-driven."""
    from streaming import dead_letter

    cfg = settings()
    letters = dead_letter.read(cfg, cfg.topic("dead-letter"), _since_ms(since))
    if not letters:
        console.print(f"{cfg.topic('dead-letter')} holds no dead letter")
        return
    known = dead_letter.status(cfg, [x.source for x in letters])
    rows: dict[tuple[str, str], Counter] = {}
    for letter in letters:
        resolved, attempts, _rule = known.get(letter.source, (False, 0, None))
        outcome = "resolved" if resolved else "failing again" if attempts else "waiting"
        rows.setdefault((letter.category, letter.rule), Counter())[outcome] += 1
    table = Table(title=f"{cfg.topic('dead-letter')}: one row per source record")
    for column in ("category", "rule", "dead letters", "resolved", "failing again", "never re-driven"):
        table.add_column(column, justify="left" if column in ("category", "rule") else "right")
    for (category, rule), n in sorted(rows.items()):
        table.add_row(
            category, rule, f"{sum(n.values()):,}", f"{n['resolved']:,}", f"{n['failing again']:,}", f"{n['waiting']:,}"
        )
    console.print(table)


@dead_letter_app.command("redrive")
def redrive(
    rule: Annotated[str | None, typer.Option("--rule", help="Only dead letters of this rule.")] = None,
    category: Annotated[str | None, typer.Option("--category", help="Only dead letters of this category.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only dead letters from this time (ISO 8601).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be sent; send nothing.")] = False,
    wait: Annotated[
        float, typer.Option("--wait", min=0, help="Seconds to wait for the stream job's verdicts (0: do not wait).")
    ] = 60.0,
) -> None:
    """Send dead letters back to their source topic (a `redrive_of` header names where they were first
    quarantined). What passes now is stored once and its quarantine row marked resolved; what fails again is
    counted on that row, with no second row and no new dead letter."""
    from schemas.quality import CATEGORIES, all_rules
    from streaming import dead_letter

    rules = sorted({r for _, _, r in all_rules()})
    if rule is not None and rule not in rules:
        raise ConfigError(f"unknown rule {rule!r}: choose one of {', '.join(rules)}")
    if category is not None and category not in CATEGORIES:
        raise ConfigError(f"unknown category {category!r}: choose one of {', '.join(CATEGORIES)}")
    since_ms = _since_ms(since)
    cfg = settings()
    letters = [
        x
        for x in dead_letter.read(cfg, cfg.topic("dead-letter"), since_ms)
        if (rule is None or x.rule == rule) and (category is None or x.category == category)
    ]
    known = dead_letter.status(cfg, [x.source for x in letters])
    open_letters = [x for x in letters if not known.get(x.source, (False, 0, None))[0]]
    resolved_before = len(letters) - len(open_letters)
    if dry_run or not open_letters:
        console.print(
            f"{len(open_letters):,} dead letters {'would be' if dry_run else 'to be'} re-driven "
            f"({resolved_before:,} selected are resolved already){'' if dry_run else ': nothing to do'}"
        )
        return
    attempts = {x.source: known.get(x.source, (False, 0, None))[1] for x in open_letters}
    dead_letter.redrive(cfg, open_letters)
    console.print(
        f"re-drove {len(open_letters):,} dead letters to their topics ({resolved_before:,} selected were "
        f"resolved already)"
    )
    if not wait:
        console.print("their verdicts: `shopstream dead-letter list` once the stream job has read them")
        return
    deadline = time.monotonic() + wait
    with console.status("waiting for the stream job's verdicts…"):
        while True:
            now = dead_letter.status(cfg, list(attempts))
            judged = {s: v for s, v in now.items() if v[1] > attempts[s]}
            if len(judged) == len(attempts) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    stored = sum(1 for v in judged.values() if v[0])
    console.print(
        f"outcome: {stored:,} stored (quarantine row resolved), {len(judged) - stored:,} failing again, "
        f"{len(attempts) - len(judged):,} not judged yet"
        + ("" if len(judged) == len(attempts) else " (is the stream job running?)")
    )


def _since_ms(since: str | None) -> int | None:
    if since is None:
        return None
    from infra.orchestration.replay import instant

    at = instant(since, "--since")
    if at > dt.datetime.now(dt.UTC):
        raise ConfigError(f"--since {since} is in the future: give a time before now")
    return int(at.timestamp() * 1000)
