"""The benchmarks' options: one model per `shopstream bench` command (flags derive from them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from core.settings import comma_separated, flag
from producers.options import LoadStep
from streaming.options import StreamOptions

Rate = Annotated[float, Field(gt=0)]
System = Literal["shopstream", "plain", "quix", "flink", "connect"]


class ProducerBenchOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duration_s: float = Field(20.0, gt=0, description="seconds to produce for")
    rate: float = Field(0.0, ge=0, description="target events/s; 0 = as fast as possible")
    clean: bool = Field(False, description="valid events only (no faults, no duplicates)")
    json_out: Path | None = Field(None, description="also write the figures as JSON", json_schema_extra=flag("json"))
    profile: Path | None = Field(
        None, description="profile with py-spy: write collapsed stacks here and print the top functions"
    )


class TransformBenchOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sizes: Annotated[list[Annotated[int, Field(gt=0)]], BeforeValidator(comma_separated)] = Field(
        [1000, 20000], min_length=1, description="comma-separated batch sizes, events: a small one shows the fixed cost"
    )
    reps: int = Field(25, ge=1, description="timed repetitions per size (after 3 untimed)")
    json_out: Path | None = Field(None, description="also write the figures as JSON", json_schema_extra=flag("json"))


class E2EBenchOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    levels: Annotated[list[Rate], BeforeValidator(comma_separated)] = Field(
        [1000.0, 5000.0, 10000.0, 15000.0], min_length=1, description="comma-separated load levels, events/s"
    )
    duration_s: float = Field(30.0, gt=0, description="seconds of production measured per level")
    warmup_s: float = Field(
        10.0, ge=0, description="seconds of production before the measured window (start-up excluded)"
    )
    systems: Annotated[list[System], BeforeValidator(comma_separated)] = Field(
        ["shopstream", "plain", "quix"],
        min_length=1,
        description="comma-separated: shopstream, plain, quix, flink, connect (the last three install on first use)",
    )
    trigger_s: float = Field(
        StreamOptions.model_fields["trigger_s"].default,
        gt=0,
        description="the stream job's trigger interval, seconds (shopstream only)",
        json_schema_extra=flag("trigger"),
    )
    search: bool = Field(True, description="past the top level, step +5000 ev/s until not sustainable")
    scaling: bool = Field(
        False,
        description=(
            "also, at the middle level: 1 vs 2 Spark cores, 1/2/4 partitions, 3 Kafka brokers (replicated topics), and "
            "a standalone Spark cluster of 1 and of 2 workers on the same 2 cores"
        ),
    )
    smoke: bool = Field(False, description="one short level per system: checks the harness, measures nothing")
    bad_data: bool = Field(
        False,
        description="the producer's default bad-data mix instead of valid events only, so that validation is part of "
        "the comparison (systems that do not validate store what they can)",
    )
    job_warmup: bool = Field(
        True,
        description="the stream job warms up before its query starts, as it does by default (--no-job-warmup: a "
        "quicker, colder start, for a smoke run)",
    )
    out: Path = Field(Path("bench-results/e2e"), description="folder for bench.json, bench.md and bench.png")
    render_only: bool = Field(False, description="only re-write bench.md and bench.png from the bench.json in --out")


class CatchupBenchOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: int = Field(1_000_000, gt=0, description="the backlog: valid events produced before each consumer starts")
    systems: Annotated[list[System], BeforeValidator(comma_separated)] = Field(
        ["shopstream", "plain", "quix"],
        min_length=1,
        description="comma-separated: shopstream, plain, quix, flink, connect (the last three install on first use)",
    )
    job_warmup: bool = Field(
        True,
        description="the stream job warms up before its query starts, as it does by default (--no-job-warmup: a "
        "quicker, colder start, for a smoke run)",
    )
    out: Path = Field(Path("bench-results/catchup"), description="folder for catchup.json and catchup.md")


class StepBenchOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: Annotated[list[LoadStep], BeforeValidator(comma_separated)] = Field(
        ["5000:60", "20000:60", "5000:60"],
        min_length=1,
        validate_default=True,
        description="the step load, RATE:SECONDS,…",
    )
    variants: Annotated[list[Literal["adaptive", "fixed"]], BeforeValidator(comma_separated)] = Field(
        ["adaptive", "fixed"],
        min_length=1,
        description=(
            "comma-separated configurations: adaptive (the job's defaults: each trigger reads what arrived), fixed "
            "(a batch size set for the first step: maxOffsetsPerTrigger = its rate × the trigger)"
        ),
    )
    objective_s: float = Field(
        1.5, gt=0, description="the e2e p95 each step is judged against, seconds", json_schema_extra=flag("objective")
    )
    trigger_s: float = Field(
        StreamOptions.model_fields["trigger_s"].default,
        gt=0,
        description="the stream job's trigger interval, seconds",
        json_schema_extra=flag("trigger"),
    )
    job_warmup: bool = Field(
        True,
        description="the stream job warms up before its query starts, as it does by default (--no-job-warmup: a "
        "quicker, colder start, for a smoke run)",
    )
    out: Path = Field(Path("bench-results/step"), description="folder for step.json, step.md and step.png")
