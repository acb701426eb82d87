"""The database upkeep's options (`shopstream maintain`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MaintainOptions(BaseModel):
    """`shopstream maintain`: the database's upkeep."""

    model_config = ConfigDict(extra="forbid")

    interval_s: float | None = Field(None, gt=0, description="repeat every this many seconds (default: once)")
