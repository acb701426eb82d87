"""Runtime commands: up, down, status, logs, fetch, kafka <tool>."""

from __future__ import annotations

import contextlib
import os
from typing import Annotated

import typer
from rich.table import Table

from core.exceptions import ShopstreamError
from core.settings import Settings
from infra.cli.app import app, console, settings


@app.command()
def up(
    with_: Annotated[
        str,
        typer.Option(
            "--with",
            help="Optional services to start too, comma-separated: pgadmin "
            "(pgAdmin 4 on 127.0.0.1, installed on first use).",
        ),
    ] = "",
    brokers: Annotated[
        int | None,
        typer.Option(
            "--brokers",
            min=1,
            max=5,
            help=(
                "Kafka nodes (each broker and controller; default: as many as the local cluster was formatted with, first "
                "1). With 3, the event topics get 3 replicas and min.insync.replicas=2."
            ),
        ),
    ] = None,
    postgres_replicas: Annotated[
        int | None,
        typer.Option(
            "--postgres-replicas",
            min=0,
            max=2,
            help=(
                "Standbys of the local PostgreSQL (default: as it last ran, first 0). With 1 or more, Patroni runs "
                "each member (etcd its store; installed from Debian on first use) and promotes a standby when the "
                "primary is lost; 0 goes back to one server. Change it between `down` and `up`."
            ),
        ),
    ] = None,
    spark_workers: Annotated[
        int,
        typer.Option(
            "--spark-workers",
            min=0,
            help=(
                "Also start a Spark standalone master and this many workers (local processes, loopback); run the job on "
                "them with `stream --master spark://127.0.0.1:7077`."
            ),
        ),
    ] = 0,
) -> None:
    """Start PostgreSQL, Kafka, the schema registry, Alertmanager and Prometheus (a no-op when they run), and the
    watchdog that restarts any of them that dies (SHOPSTREAM_WATCHDOG=false turns it off)."""
    from infra.runtime import stack

    optional = tuple(name.strip() for name in with_.split(",") if name.strip())
    unknown = sorted(set(optional) - set(stack.OPTIONAL_NAMES))
    if unknown:
        raise typer.BadParameter(
            f"unknown service {', '.join(unknown)}: choose from {', '.join(stack.OPTIONAL_NAMES)}", param_hint="--with"
        )
    cfg = settings()
    if brokers is not None:
        cfg = cfg.model_copy(update={"kafka_nodes": brokers})
    if postgres_replicas is not None:
        cfg = cfg.model_copy(update={"postgres_replicas": postgres_replicas})
    with console.status("starting…") as spinner:

        def step(name: str, what: str) -> None:
            spinner.update(f"{name}: {what}…")
            if what in ("healthy", "external", "started"):
                console.print(f"[green]✔[/] {name} {what}")

        stack.up(cfg, step, watchdog=cfg.watchdog, with_=optional, spark_workers=spark_workers)
    _print_status(cfg)
    if "pgadmin" in optional:
        console.print(
            f"pgAdmin: {cfg.pgadmin_url} (log in as {cfg.pgadmin_email}; the password is the "
            f"pgadmin_password setting, SHOPSTREAM_PGADMIN_PASSWORD)",
            highlight=False,
        )


@app.command()
def watchdog() -> None:
    """Restart local services that die, with backoff, in the foreground (`up` runs this in the background)."""
    from infra.runtime import watchdog as dog

    cfg = settings()
    console.print(f"watching the local services every {cfg.watchdog_interval_s:g} s (Ctrl-C stops)")
    with contextlib.suppress(KeyboardInterrupt):
        dog.watch(cfg)


@app.command()
def down() -> None:
    """Stop every local service that `up` started. Succeeds when nothing runs."""
    from infra.runtime import stack

    stopped = stack.down(settings())
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@app.command()
def status(
    as_json: Annotated[
        bool, typer.Option("--json", help="Everything status shows, as one JSON document (schema in the README).")
    ] = False,
) -> None:
    """Show each service (state, health, version, address) and each running stream job (role, pid, lease epoch,
    last commit). Exits 1 if any service is unhealthy."""
    cfg = settings()
    if as_json:
        import json

        document = status_document(cfg)
        print(json.dumps(document, indent=2))
        if not all(s["healthy"] for s in document["services"]):
            raise typer.Exit(1)
        return
    if not _print_status(cfg):
        raise typer.Exit(1)


def stream_jobs(cfg: Settings) -> list[dict]:
    """Each running stream driver (`run/drivers/`), with its pipeline's lease: epoch, holder, age of the last
    commit. The lease columns are null when PostgreSQL cannot be read."""
    from streaming import lease as leases

    rows, by_pipeline = [], {}
    for driver in leases.running_drivers(cfg):
        pipeline = driver["pipeline"]
        if pipeline not in by_pipeline:
            try:
                by_pipeline[pipeline] = leases.read(cfg, pipeline, "reader")
            except Exception:  # noqa: BLE001 - status shows what it can: the database may be away
                by_pipeline[pipeline] = None
        held = by_pipeline[pipeline]
        rows.append(
            {
                **driver,
                "lease_epoch": held.epoch if held else None,
                "lease_holder": held.holder if held else None,
                "last_commit_age_s": round(held.last_commit_age_s, 1)
                if held and held.last_commit_age_s is not None
                else None,
            }
        )
    return rows


def status_document(cfg: Settings) -> dict:
    """What `status --json` prints: services, the watchdog, stream jobs, PostgreSQL members (with replicas)."""
    from infra.runtime import stack, watchdog
    from infra.runtime.services import patroni

    restarts = watchdog.restarts(cfg)
    return {
        "services": [
            {
                "name": st.name,
                "state": "external" if not st.managed else ("running" if st.running else "stopped"),
                "healthy": st.healthy,
                "version": st.version,
                "pid": st.pid,
                "address": st.address,
                "restarts": restarts[st.name].restarts if st.name in restarts else 0,
            }
            for st in stack.status(cfg)
        ],
        "watchdog": {"pid": stack.watchdog_process(cfg).pid()},
        "stream_jobs": stream_jobs(cfg),
        "postgres_members": patroni.cluster(cfg),
    }


def _print_status(cfg: Settings) -> bool:
    from infra.runtime import stack, watchdog
    from monitoring.live_view import graph_url

    restarts = watchdog.restarts(cfg)
    # Addresses go under the table, one a line: with them in it, it would not fit 80 columns.
    table = Table(title="shopstream services")
    for column in ("service", "state", "healthy", "version", "pid", "restarts"):
        table.add_column(column, no_wrap=True, justify="right" if column in ("pid", "restarts") else "left")
    all_ok = True
    services = stack.status(cfg)
    for st in services:
        all_ok &= st.healthy
        state = "external" if not st.managed else ("running" if st.running else "stopped")
        record = restarts.get(st.name)
        table.add_row(
            st.name,
            state,
            "[green]yes[/]" if st.healthy else "[red]no[/]",
            st.version,
            str(st.pid or "-"),
            str(record.restarts) if record else "0",
        )
    console.print(table)
    width = max(len(st.name) for st in services)
    for st in services:
        console.print(f"{st.name:<{width}}  {st.address}", highlight=False, soft_wrap=True)
    dog = stack.watchdog_process(cfg).pid()
    console.print(
        f"watchdog: running (pid {dog}), restarts are logged in {cfg.runtime_dir / 'logs' / 'watchdog.log'}"
        if dog
        else "watchdog: off (`shopstream up` starts it unless SHOPSTREAM_WATCHDOG=false)",
        highlight=False,
        soft_wrap=True,
    )  # a path is never broken across lines
    _print_postgres_members(cfg)
    jobs = stream_jobs(cfg)
    if jobs:
        table = Table(title="stream jobs")
        for column in ("pipeline", "role", "pid", "epoch", "last commit"):
            table.add_column(column, no_wrap=True, justify="left" if column in ("pipeline", "role") else "right")
        for job in jobs:
            age = job["last_commit_age_s"]
            table.add_row(
                job["pipeline"],
                job["role"],
                str(job["pid"]),
                str(job["lease_epoch"] or "-"),
                "-" if age is None else f"{age:.0f} s ago",
            )
        console.print(table)
    else:
        console.print("stream jobs: none running (`shopstream stream` or `shopstream run`)")
    errors = [f"{name}: {r.last_error}" for name, r in restarts.items() if r.last_error]
    for line in errors:
        console.print(f"[yellow]last failed restart[/] {line}")
    console.print(f"alerts: {cfg.alertmanager_url}/#/alerts")
    # One long link (stage p95s, lag, quality ratio): never broken up, so it stays clickable
    console.print(f"live graphs: {graph_url(cfg.prometheus_endpoint)}", highlight=False, soft_wrap=True)
    return all_ok


def _print_postgres_members(cfg: Settings) -> None:
    """With PostgreSQL replicas: each member as Patroni reports it."""
    from infra.runtime.services import patroni

    rows = patroni.cluster(cfg)
    if not rows:
        return
    table = Table(title="PostgreSQL members (Patroni)")
    for column in ("member", "role", "state", "agent", "postmaster", "port", "lag MB"):
        table.add_column(column, no_wrap=True, justify="left" if column in ("member", "role", "state") else "right")
    for row in rows:
        table.add_row(
            row["name"],
            row["role"],
            row["state"],
            str(row["agent_pid"] or "-"),
            str(row["postmaster_pid"] or "-"),
            str(row["port"]),
            "-" if row["lag_mb"] is None else str(row["lag_mb"]),
        )
    console.print(table)


@app.command()
def logs(
    service: Annotated[
        str,
        typer.Argument(
            help="postgres (postgres-2… with replicas), etcd, kafka, registry, alertmanager, prometheus, pgadmin, "
            "watchdog or stream"
        ),
    ],
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, help="How many lines from the end.")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
) -> None:
    """Print a service's log from .runtime/logs/."""
    from infra.runtime import stack

    members = tuple(s.name for s in stack.services(settings(), ["postgres"]))  # postgres-2… with replicas
    names = tuple(dict.fromkeys((*stack.SERVICE_NAMES, *members, *stack.OPTIONAL_NAMES, "watchdog", "stream")))
    if service not in names:
        raise ShopstreamError(f"unknown service {service!r}: choose one of {', '.join(names)}")
    path = settings().runtime_dir / "logs" / f"{service}.log"
    if not path.exists():
        raise ShopstreamError(f"no log yet at {path}: start the stack with `shopstream up`")
    argv = ["tail", "-n", str(lines), *(["-F"] if follow else []), str(path)]
    os.execvp(argv[0], argv)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []})
def kafka(
    ctx: typer.Context,
    tool: Annotated[
        str, typer.Argument(help="topics, console-consumer, console-producer, consumer-groups, get-offsets, configs")
    ],
) -> None:
    """Run one of Kafka's own command-line tools from the same jars, pointed at our broker.

    Example: shopstream kafka console-consumer --topic shop.orders --from-beginning
    """
    from infra.runtime.services.kafka import TOOLS, tool_command

    if tool not in TOOLS:
        raise ShopstreamError(f"unknown Kafka tool {tool!r}: choose one of {', '.join(TOOLS)}")
    argv = tool_command(settings(), tool, list(ctx.args))
    os.execvp(argv[0], argv)


@app.command()
def fetch(
    only: Annotated[list[str] | None, typer.Option(help="Fetch only these: kafka, spark, registry.")] = None,
) -> None:
    """Download the JVM pieces (Kafka, Apicurio, Spark connectors) into .runtime/ if missing; then, unless --only is
    given, make the archive Spark's driver starts from (once per Java and pyspark)."""
    from infra.runtime import jvm

    cfg = settings()
    names = {a.name for a in jvm.ARTIFACTS}
    if only and not set(only) <= names:
        raise ShopstreamError(f"unknown artifact(s) {sorted(set(only) - names)}: choose from {sorted(names)}")
    for artifact in (a for a in jvm.ARTIFACTS if not only or a.name in only):
        with console.status(f"fetching {artifact.name} (first run only)…"):
            folder = jvm.ensure_fetched(artifact, cfg.runtime_dir)
        console.print(f"[green]✔[/] {artifact.name}: {folder}")
    if not only and cfg.spark_class_archive:
        with console.status("making Spark's start-up archive (first run only, about 30 s)…"):
            archive = jvm.spark_class_archive(cfg.runtime_dir)
        if archive is not None:
            console.print(f"[green]✔[/] spark start-up archive: {archive}")
