"""`shopstream chaos`'s options (flags derive from the model)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from core.settings import PROJECT_ROOT, comma_separated

SCENARIOS = (
    "job-sigkill",
    "jvm-kill",
    "standby-job-sigkill",
    "standby-jvm-kill",
    "standby-hang",
    "pg-stop-10s",
    "pg-stop-60s",
    "pg-connection-kill",
    "pg-primary-kill",
    "broker-kill",
    "registry-kill",
    "checkpoint-disk-full",
    "database-disk-full",
    "kafka-disk-full",
    "pg-partition-30s",
    "kafka-partition-30s",
    "producer-sigkill",
)

#: Scenarios of a PostgreSQL with replicas (`up --postgres-replicas 1`); the others run on one server.
NEEDS_REPLICAS = ("pg-primary-kill",)


class ChaosOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenarios: Annotated[list[str], BeforeValidator(comma_separated)] = Field(
        [s for s in SCENARIOS if s not in NEEDS_REPLICAS],
        min_length=1,
        description=f"comma-separated, of: {', '.join(SCENARIOS)} (default: all but {', '.join(NEEDS_REPLICAS)}, "
        "which needs `up --postgres-replicas 1`)",
    )
    runs: int = Field(3, ge=1, description="runs per scenario")
    events: int = Field(100_000, ge=1000, description="events produced per run")
    rate: float = Field(3000.0, gt=0, description="events per second")
    out: Path | None = Field(
        PROJECT_ROOT / "bench-results" / "faults", description="folder for faults.json and faults.md"
    )

    @field_validator("scenarios")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SCENARIOS))
        if unknown:
            raise ValueError(f"unknown scenario(s) {', '.join(unknown)}: choose from {', '.join(SCENARIOS)}")
        return value
