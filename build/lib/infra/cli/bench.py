"""`shopstream bench …`: benchmarks measured live against the running stack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from infra.cli.app import app, console, settings
from infra.exceptions import DependencyMissing

bench_app = typer.Typer(help="Benchmarks measured live (never timed unit tests).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("producer")
def bench_producer(
    duration: Annotated[float, typer.Option(help="Seconds to produce for.")] = 20.0,
    rate: Annotated[float, typer.Option(help="Target events/s; 0 = as fast as possible.")] = 0.0,
    clean: Annotated[bool, typer.Option("--clean", help="Valid events only (no faults, no duplicates).")] = False,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the figures as JSON.")] = None,
    profile: Annotated[Optional[Path], typer.Option(help="Profile with py-spy: write collapsed stacks here and print the top functions.")] = None,
) -> None:
    """Sustained events/s of one producer process to the local broker, acks=all."""
    if profile:
        _profile_self(profile)
        return
    from infra.bench import producer as bench

    result = bench.run(settings(), duration_s=duration, rate=rate, with_faults=not clean)
    table = Table(title="producer benchmark (one process, acks=all, idempotent, lz4)")
    for column in ("events", "failed", "seconds", "events/s", "CPU s", "events per CPU-s", "CPU use"):
        table.add_column(column, justify="right")
    table.add_row(f"{result.events:,}", str(result.failed), f"{result.seconds}", f"{result.events_per_second:,}",
                  f"{result.cpu_seconds}", f"{result.events_per_cpu_second:,}", f"{result.cpu_utilisation:.0%}")
    console.print(table)
    if json_out:
        json_out.write_text(json.dumps(result.to_dict(), indent=2) + "\n")


def _profile_self(folded: Path) -> None:
    """Re-run this benchmark under py-spy (collapsed stacks), then print the hottest functions."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.access(spy, os.X_OK):
        raise DependencyMissing("py-spy is not installed: pip install py-spy (it is in the [bench] extra)")
    argv = list(sys.argv[1:])
    i = argv.index("--profile")
    del argv[i:i + 2]
    subprocess.run([spy, "record", "--rate", "250", "--nonblocking", "--format", "raw", "-o", str(folded),
                    "--", sys.executable, "-m", "infra", *argv], check=True)
    own, total = Counter(), 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        own[stack.split(";")[-1]] += int(count)
    table = Table(title=f"py-spy: self time by function ({total} samples)")
    table.add_column("function (file:line)")
    table.add_column("self %", justify="right")
    for frame, n in own.most_common(15):
        table.add_row(frame, f"{100 * n / total:.1f}")
    console.print(table)
    console.print(f"collapsed stacks (open in speedscope or flamegraph.pl): {folded}")
