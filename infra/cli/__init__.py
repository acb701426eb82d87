"""The `shopstream` command line: one module per group of commands."""

from infra.cli.app import app, main

# Importing the command modules registers their commands on `app`.
from infra.cli import runtime, produce, pipeline, report, bench, chaos, archive, deadletter  # noqa: F401  isort: skip

__all__ = ["app", "main"]
