"""The Typer app, global flags, settings and error handling shared by every command.

Only the CLI configures logging and prints; it wires the stages together and does no work of its own.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from typer._click.exceptions import ClickException, UsageError  # Typer 0.29 vendors click as typer._click

from core.exceptions import ShopstreamError
from core.settings import Settings

console = Console()
err_console = Console(stderr=True)
app = typer.Typer(
    help="shopstream: shop events from Faker through Kafka and Spark into PostgreSQL, measured end to end.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Flags that override settings; each falls back to its SHOPSTREAM_* variable.
_OVERRIDES: dict[str, object] = {}


def env(name: str) -> dict:
    """Typer option kwargs: fall back to SHOPSTREAM_<NAME> and show it in --help."""
    return {"envvar": f"SHOPSTREAM_{name.upper()}", "show_envvar": True}


@app.callback()
def _global(
    runtime_dir: Annotated[
        Path | None, typer.Option(help="Folder for downloads, data, logs, pids.", **env("runtime_dir"))
    ] = None,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(help="Use this Kafka cluster instead of the local broker.", **env("bootstrap_servers")),
    ] = None,
    schema_registry_url: Annotated[
        str | None,
        typer.Option(help="Use this Confluent-API registry instead of the local one.", **env("schema_registry_url")),
    ] = None,
    topic_prefix: Annotated[str | None, typer.Option(help="Prefix of every topic name.", **env("topic_prefix"))] = None,
    kafka_port: Annotated[
        int | None, typer.Option(help="Local Kafka broker port (default 9092).", **env("kafka_port"))
    ] = None,
    registry_port: Annotated[
        int | None, typer.Option(help="Local registry port (default 8081).", **env("registry_port"))
    ] = None,
    postgres_port: Annotated[
        int | None, typer.Option(help="Local PostgreSQL port (default 5432).", **env("postgres_port"))
    ] = None,
    prometheus_port: Annotated[
        int | None, typer.Option(help="Local Prometheus port (default 9090).", **env("prometheus_port"))
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    for key, value in locals().copy().items():
        if key != "verbose" and value is not None:
            _OVERRIDES[key] = value
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, show_time=False)],
    )
    for noisy in ("httpx", "httpx2", "httpcore", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # librdkafka logs every refused connection; our errors say what matters, once.
    logging.getLogger("librdkafka").setLevel(logging.DEBUG if verbose else logging.CRITICAL)


def settings() -> Settings:
    try:
        return Settings(**_OVERRIDES)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        raise ShopstreamError(
            f"invalid setting {field}: {first['msg']} (from --{field.replace('_', '-')} or SHOPSTREAM_{field.upper()})"
        ) from None


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. Every error a person can cause is one line on stderr: exit 2 for a
    bad flag, value or setting and for a dependency that is not there, 130 for Ctrl-C."""
    try:
        code = app(args=argv, standalone_mode=False)
    except UsageError as exc:  # unknown command or flag, missing or malformed value
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        _error(f"{exc.format_message()}{hint}", 2)
    except ClickException as exc:
        _error(exc.format_message(), exc.exit_code)
    except ShopstreamError as exc:
        _error(str(exc), 2)
    except (KeyboardInterrupt, typer.Abort):
        err_console.print("interrupted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def _error(message: str, code: int) -> None:
    """One line, never wrapped, never read as markup."""
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    err_console.print(f"[red]error:[/] {escape(first)}", highlight=False, soft_wrap=True)
    sys.exit(code)
