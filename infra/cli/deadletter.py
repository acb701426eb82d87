"""`shopstream dead-letter …`: what is on the dead-letter topic, and sending it back once the cause is fixed."""

from __future__ import annotations

import datetime as dt
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
    from infra.orchestration import redrive

    cfg = settings()
    rows = redrive.by_rule(cfg, _since_ms(since))
    if not rows:
        console.print(f"{cfg.topic('dead-letter')} holds no dead letter")
        return
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
    from infra.orchestration import redrive as re_drive

    since_ms = _since_ms(since)
    cfg = settings()
    picked = re_drive.select(cfg, rule, category, since_ms)
    n, before = len(picked.open_letters), picked.resolved_before
    if dry_run or not n:
        console.print(
            f"{n:,} dead letters {'would be' if dry_run else 'to be'} re-driven "
            f"({before:,} selected are resolved already){'' if dry_run else ': nothing to do'}"
        )
        return
    re_drive.send(cfg, picked)
    console.print(f"re-drove {n:,} dead letters to their topics ({before:,} selected were resolved already)")
    if not wait:
        console.print("their verdicts: `shopstream dead-letter list` once the stream job has read them")
        return
    with console.status("waiting for the stream job's verdicts…"):
        v = re_drive.await_verdicts(cfg, picked, wait)
    console.print(
        f"outcome: {v.stored:,} stored (quarantine row resolved), {v.failing_again:,} failing again, "
        f"{v.not_judged:,} not judged yet" + (" (is the stream job running?)" if v.not_judged else "")
    )


def _since_ms(since: str | None) -> int | None:
    if since is None:
        return None
    from infra.orchestration.replay import instant

    at = instant(since, "--since")
    if at > dt.datetime.now(dt.UTC):
        raise ConfigError(f"--since {since} is in the future: give a time before now")
    return int(at.timestamp() * 1000)
