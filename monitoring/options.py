"""The monitoring commands' options: `shopstream report` and `shopstream exporter`."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ReportOptions(BaseModel):
    """`shopstream report`."""

    model_config = ConfigDict(extra="forbid")

    minutes: float = Field(60.0, gt=0, description="report on what the sink committed in the last N minutes")
    png: Path | None = Field(None, description="where to write the charts (default .runtime/report.png)")
    html: Path | None = Field(
        None,
        description="where to write the self-contained HTML report: the tables and the "
        "charts (default .runtime/report.html)",
    )
    manifest_path: Path | None = Field(
        None, description="a producer manifest (`produce --manifest`), for the produced series and the run's parameters"
    )
    query_runs: int = Field(20, ge=1, le=1000, description="repetitions of each timed database query")


class ExporterOptions(BaseModel):
    """`shopstream exporter` (its port is the exporter_metrics_port setting)."""

    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(
        "shopstream", pattern=r"^[a-z0-9_-]+$", description="pipeline whose ledger the lag is measured against"
    )
    interval_s: float = Field(5.0, gt=0, description="seconds between measurements")
