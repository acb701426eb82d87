"""The producer's options: one run of the generator and producer (`shopstream produce`, and `run`'s producing),
its bad-data mix and its step load. The CLI derives its flags from these models (infra.cli.options)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from core.settings import comma_separated, flag


class FaultRatios(BaseModel):
    """Share of events the generator breaks on purpose, per data-quality category: a field per category of
    schemas.quality.CATEGORIES, named by it (``schema`` is ``schema_``, which shadows nothing in pydantic);
    tests/unit/test_quality_contract.py ties the two."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: float = Field(
        0.002,
        ge=0,
        le=1,
        alias="schema",
        json_schema_extra=flag("schema-ratio"),
        description="share that is unframed, of an unknown schema, or undecodable",
    )
    data_type: float = Field(
        0.002,
        ge=0,
        le=1,
        json_schema_extra=flag("data-type-ratio"),
        description="share with a malformed id, timestamp, currency, amount or field",
    )
    completeness: float = Field(
        0.003,
        ge=0,
        le=1,
        json_schema_extra=flag("completeness-ratio"),
        description="share missing a required field or the order lines",
    )
    business_rules: float = Field(
        0.008,
        ge=0,
        le=1,
        json_schema_extra=flag("business-rules-ratio"),
        description="share breaking a business rule (price, quantity, future time, totals)",
    )

    @model_validator(mode="after")
    def _at_most_one(self) -> FaultRatios:
        if self.total() > 1:
            raise ValueError("the bad-data ratios add up to more than 1")
        return self

    def total(self) -> float:
        return sum(self.as_dict().values())

    def as_dict(self) -> dict[str, float]:
        """{category: share}, by the data contract's category names (the fields' aliases)."""
        return self.model_dump(by_alias=True)


#: No broken events at all (benchmarks, and tests that want only valid ones).
NO_FAULTS = FaultRatios(schema_=0, data_type=0, completeness=0, business_rules=0)
#: The default bad-data mix: roughly the seed report's error profile, scaled up so that
#: every rule fires in a short run.
DEFAULT_FAULTS = FaultRatios().as_dict()


def load_step(value):
    """One step of a step load, "RATE:SECONDS" -> (rate, seconds): "20000:60" holds 20,000 events/s for 60 s."""
    if isinstance(value, str):
        rate, colon, seconds = value.partition(":")
        if not colon:
            raise ValueError("a step is RATE:SECONDS, e.g. 20000:60")
        return rate, seconds
    return value


LoadStep = Annotated[tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]], BeforeValidator(load_step)]


class ProduceOptions(BaseModel):
    """One run of the generator and producer (`shopstream produce`, and `run`'s producing)."""

    model_config = ConfigDict(extra="forbid")

    rate: float = Field(5000.0, ge=0, description="events per second; 0 = as fast as possible")
    duration_s: float | None = Field(None, gt=0, description="seconds to produce for")
    count: int | None = Field(None, gt=0, description="number of events to produce")
    seed: int = Field(42, description="random seed: the same seed and run id give the same events")
    run_id: str | None = Field(None, description="mixed into event ids (default: random)")
    faults: FaultRatios = FaultRatios()
    duplicate_ratio: float = Field(0.01, ge=0, le=0.5, description="share of events re-sent with the same event_id")
    late_ratio: float = Field(
        0.02, ge=0, le=1, description="share of events whose event_time lags (late, out of order)"
    )
    late_max_s: float = Field(120.0, ge=0, description="how far a late event's event_time lags, at most (s)")
    v2_ratio: float = Field(0.5, ge=0, le=1, description="share of clickstream events written with schema v2")
    burst: bool = Field(False, description="2 s at 3x the rate, then 4 s quiet (same average)")
    steps: Annotated[list[LoadStep], BeforeValidator(comma_separated)] = Field(
        [],
        description="a step load in place of --rate and --burst: RATE:SECONDS,… (e.g. 5000:60,20000:60,5000:60); "
        "--duration defaults to their sum",
    )
    sessions: int = Field(500, ge=1, description="concurrent shopping sessions")
    customers: int = Field(5000, ge=1, description="customers in the generator's pool")
    products: int = Field(1000, ge=1, description="products in the generator's pool")
    cart_rate: float = Field(0.35, ge=0, le=1, description="share of sessions that add to the cart")
    checkout_rate: float = Field(0.6, ge=0, le=1, description="share of carts that start checkout")
    purchase_rate: float = Field(0.8, ge=0, le=1, description="share of checkouts that end in an order")
    manifest_path: Path | None = Field(
        None,
        description="write what was acknowledged, by quality outcome, as JSON "
        "(kept as the run's journal while it runs)",
    )
    resume: Path | None = Field(
        None,
        description="finish a killed run from its --manifest file, sending only what "
        "is not in Kafka yet (its other options come from that file)",
    )
    forever: bool = Field(
        False, description="produce until stopped (SIGTERM or Ctrl-C), as a service does; each start a new run id"
    )
    load_dimensions: bool = Field(
        False,
        description="first load the generator's customers and products (its --seed and sizes) into PostgreSQL",
    )

    @model_validator(mode="after")
    def _bounded(self) -> ProduceOptions:
        if self.steps and self.duration_s is None:
            self.duration_s = sum(seconds for _, seconds in self.steps)
        if self.forever and (self.duration_s is not None or self.count is not None):
            raise ValueError("--forever runs until stopped: give it without --duration, --count or --steps")
        if self.duration_s is None and self.count is None and self.resume is None and not self.forever:
            raise ValueError("give --duration or --count (or --forever, or --resume MANIFEST)")
        return self
