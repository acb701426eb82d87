"""`shopstream chaos`: the fault matrix against the live pipeline, as the seed's recovery table."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from rich.table import Table

from infra.chaos.options import ChaosOptions
from infra.cli.app import app, console, settings
from infra.cli.options import Options, with_options


def _spread(v: dict | None) -> str:
    if v is None:
        return "not seen"
    text = f"{v['min']:.1f}/{v['median']:.1f}/{v['max']:.1f}"
    return text + (f" ({v['missing']} not seen)" if v["missing"] else "")


def _detection(row: dict) -> str:
    """A scenario whose fault the platform does not watch for (a killed producer: the user's process) has none."""
    return "n/a" if row["detected_by"] == "none" else _spread(row["detection_s"])


@app.command()
@with_options(Options("options", ChaosOptions, "chaos"))
def chaos(options: ChaosOptions) -> None:
    """Inject real faults into the running pipeline and print the seed's failure-recovery table, measured.

    Each scenario gets topics, a checkpoint and a stream job of its own; each run produces --events at --rate
    with the default bad-data mix, injects the fault part-way, then drains and checks exact accounting.
    Needs root for the partition (nftables) and disk-full (tmpfs) scenarios.
    """
    from infra.chaos import harness

    cfg = settings()
    started = datetime.now(UTC)
    with console.status("starting…") as status:

        def step(text: str) -> None:
            status.update(text + "…")

        def result(r) -> None:
            console.print(
                f"[green]▸[/] {r.scenario} run {r.run}: detection {r.detection_s} s, recovery "
                f"{r.recovery_s} s, lost {r.lost}, duplicates {r.duplicates} ({r.handled_by})"
                + (f"; the old primary in sync again {r.rejoin_s} s after its return" if r.rejoin_s else "")
            )

        results = harness.run_matrix(cfg, options, step, result)
    rows = harness.table(results)
    out = Table(title="Failure recovery, measured (s: min/median/max over the runs)")
    for column in ("scenario", "detection", "recovery", "lost", "dup", "runs"):
        out.add_column(column, justify="left" if column == "scenario" else "right", no_wrap=True)
    for row in rows:
        out.add_row(
            row["scenario"],
            _detection(row),
            _spread(row["recovery_s"]),
            str(row["lost"]),
            str(row["duplicates"]),
            str(row["runs"]),
        )
    console.print(out)
    if options.out:
        options.out.mkdir(parents=True, exist_ok=True)
        document = {
            "started": started.isoformat(timespec="seconds"),
            "options": options.model_dump(mode="json"),
            "table": rows,
            "runs": harness.as_dicts(results),
        }
        (options.out / "faults.json").write_text(json.dumps(document, indent=2) + "\n")
        (options.out / "faults.md").write_text(markdown(document))
        console.print(f"written: {options.out / 'faults.md'}, {options.out / 'faults.json'}")
    if any(r["lost"] or r["duplicates"] or not r["quality_matches_manifest"] for r in rows):
        raise SystemExit(1)


def _pair(values: list) -> str:
    return " / ".join("–" if v is None else f"{v:g}" for v in values)


def markdown(doc: dict) -> str:
    o = doc["options"]
    lines = [
        "# Failure recovery, measured by `shopstream chaos`",
        "",
        (
            f"Started {doc['started']}; {o['runs']} run(s) per scenario, {o['events']:,} events per run at "
            f"{o['rate']:,.0f} events/s with the default bad-data mix; everything on one 2-core machine."
        ),
        (
            "Detection is read from the job's own /metrics timestamps (or the watchdog's, for a killed service), "
            "not from Prometheus. Recovery runs from the fault being cleared (for a kill: the kill) until the job "
            "has committed again and lag is back under its level before the fault. A killed producer is the "
            "user's process, not watched by the platform: no detection; its recovery runs from its rerun "
            "(`produce --resume`)."
        ),
        "",
        (
            "| scenario | seed row (detection / recovery s) | target s | detection s (min / median / max) "
            "| recovery s (min / median / max) | lost | duplicates | runs | handled by |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["table"]:
        lines.append(
            f"| {r['scenario']} | {r['seed_row']} ({_pair(r['seed_s']) if r['seed_s'] else 'not survivable'}) | "
            f"{_pair(r['target_s'])} | {_detection(r)} | "
            f"{_spread(r['recovery_s'])}"
            + (f" ({_spread(r['after_back_s'])} after the service was back)" if r.get("after_back_s") else "")
            + (
                f" (the old primary in sync again {_spread(r['rejoin_s'])} after its return)"
                if r.get("rejoin_s")
                else ""
            )
            + f" | {r['lost']} | {r['duplicates']} | {r['runs']} | "
            f"{'; '.join(r['handled_by'])} |"
        )
    return "\n".join(lines) + "\n"
