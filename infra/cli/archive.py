"""`shopstream archive …`: data tiering (db.archive): old days to verified Parquet, back again, and a list."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from infra.cli.app import app, console, settings

archive_app = typer.Typer(
    help="Move days older than the hot window (SHOPSTREAM_HOT_DAYS, 7) from PostgreSQL to Parquet files, verified "
    "before anything is dropped; the quarantine, ledger and per-minute KPIs after SHOPSTREAM_TRIM_DAYS (30). "
    "The database upkeep runs it once a day.",
    invoke_without_command=True,
)
app.add_typer(archive_app, name="archive")

Day = Annotated[
    dt.datetime | None,
    typer.Option(
        "--day",
        formats=["%Y-%m-%d"],
        help=("Archive this day's fact partitions now, whatever their age (a restored day, say)."),
    ),
]
Today = Annotated[
    dt.datetime | None,
    typer.Option("--today", formats=["%Y-%m-%d"], help=("The day the windows count back from (default: today, UTC).")),
]


@archive_app.callback()
def archive(
    ctx: typer.Context,
    day: Day = None,
    today: Today = None,
    preview: Annotated[bool, typer.Option("--preview", help="List what would be archived; change nothing.")] = False,
) -> None:
    """Archive what is due: export, verify (row count and checksum), then drop or delete."""
    if ctx.invoked_subcommand is not None:
        return
    from db import archive as tiering

    cfg = settings()
    done = tiering.run(cfg, (today or dt.datetime.now(dt.UTC)).date(), day.date() if day else None, dry_run=preview)
    if not done:
        console.print(f"nothing to archive (facts are kept {cfg.hot_days} days, the rest {cfg.trim_days})")
        return
    table = Table(title=("would archive" if preview else f"archived to {cfg.archive_path}"))
    for column in ("table", "day", "rows", "file", "size"):
        table.add_column(column, justify="right" if column in ("rows", "size") else "left")
    for a in done:
        table.add_row(
            a.table,
            a.day.isoformat(),
            f"{a.rows:,}",
            str(a.path.relative_to(cfg.archive_path)),
            "-" if preview else _size(a.bytes),
        )
    console.print(table)


@archive_app.command("restore")
def restore(
    day: Annotated[dt.datetime, typer.Option("--day", formats=["%Y-%m-%d"], help="The archived day to attach again.")],
) -> None:
    """Attach an archived day's fact partitions again (checked against the recorded checksum). The upkeep leaves a
    restored day alone; `shopstream archive --day D` archives it again."""
    from db import archive as tiering

    cfg = settings()
    for a in tiering.restore(cfg, day.date()):
        console.print(f"restored {a.table} of {a.day}: {a.rows:,} rows from {a.path}")


@archive_app.command("list")
def list_archived() -> None:
    """Every archived day: rows, size, when it was archived, removed and restored."""
    from db import archive as tiering

    cfg = settings()
    rows = tiering.listed(cfg)
    if not rows:
        console.print(f"nothing archived yet (archive folder: {cfg.archive_path})")
        return
    table = Table(title=f"archive: {cfg.archive_path}")
    for column in ("table", "day", "rows", "size", "archived", "restored"):
        table.add_column(column, justify="right" if column in ("rows", "size") else "left")
    for name, day, count, size, archived_at, _removed_at, restored_at in rows:
        table.add_row(
            name,
            day.isoformat(),
            f"{count:,}",
            _size(size),
            f"{archived_at:%Y-%m-%d %H:%M}",
            f"{restored_at:%Y-%m-%d %H:%M}" if restored_at else "",
        )
    console.print(table)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"
