"""The stream job's options: one run of the Spark Structured Streaming job (`shopstream stream`, and `run`'s
job). The CLI derives its flags from this model (infra.cli.options)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from core.settings import HIDDEN, Settings
from schemas.quality import QUANTITY_LIMIT


class StreamOptions(BaseModel):
    """One run of the Spark Structured Streaming job (`shopstream stream`, and `run`'s job)."""

    model_config = ConfigDict(extra="forbid")

    master: str = Field("local[*]", description="Spark master: local[*], local[N] or spark://host:port")
    pipeline: str = Field(
        "shopstream", pattern=r"^[a-z0-9_-]+$", description="pipeline name (ledger, consumer group, checkpoint)"
    )
    checkpoint_dir: Path | None = Field(
        None, description="checkpoint folder (default .runtime/checkpoints/PREFIX/PIPELINE)"
    )
    trigger_s: float = Field(0.5, ge=0, description="micro-batch interval in seconds; 0 = back to back")
    max_offsets_per_trigger: int = Field(200_000, ge=1, description="backpressure: records per micro-batch at most")
    driver_memory: str = Field("2g", pattern=r"^[0-9]+[kmgt]$", description="Spark driver heap, e.g. 2g")
    executor_memory: str = Field(
        "768m",
        pattern=r"^\d+[mg]$",
        description="each executor's memory on a cluster master (spark://…); a local worker offers 1g",
    )
    shuffle_partitions: int = Field(2, ge=1, description="Spark SQL shuffle partitions")
    late_threshold_s: float = Field(5.0, ge=0, description="an event reaching Kafka later than this (s) counts as late")
    dead_letter: bool = Field(True, description="also publish quarantined records to the dead-letter topic")
    stop_when_idle_s: float | None = Field(None, gt=0, description="stop once caught up and idle this many seconds")
    ui: bool = Field(False, description="serve the Spark UI")
    overlap_sink: bool = Field(
        True,
        description=(
            "commit each micro-batch to PostgreSQL while Spark runs the next one (one batch in flight; a restart "
            "resumes from the database's ledger); off: each batch commits before the next one starts"
        ),
    )
    rollup_refresh_s: float = Field(30.0, gt=0, description="how often the hourly/daily rollups are refreshed (s)")
    sink_retry_s: float = Field(
        300.0,
        gt=0,
        description="how long the sink retries a micro-batch through a "
        "transient fault (database or dead-letter topic away) "
        "before the job fails",
    )
    stall_after_s: float = Field(
        10.0,
        gt=0,
        description="report the job stalled (shopstream_stream_stalled) when "
        "input waits in Kafka and nothing committed for this long",
    )
    supervise: bool = Field(
        True,
        description="restart the job's process when it dies (SIGKILL, OOM, a crash), from its checkpoint, with backoff",
    )
    standby: bool = Field(
        False,
        description=(
            "run a warm standby driver beside the active one: it warms up once the job's lag is normal, then takes "
            "over within seconds when the active driver dies, hangs or stops (a lease the database fences)"
        ),
    )
    lease_ttl_s: float = Field(
        3.0,
        gt=0,
        description="a driver that has not renewed the pipeline's lease for this long (s) is taken over by a standby",
    )
    quantity_limit: int | None = Field(
        None,
        ge=1,
        description=(
            f"business rule: units of one product in one line, at most (default: the data contract's, {QUANTITY_LIMIT}); "
            "relax it, "
            "then `shopstream dead-letter redrive --rule quantity_over_limit` stores what it quarantined"
        ),
    )
    warmup: bool = Field(
        True,
        description=(
            "run the stream's own plan over 12,000 generated events on private topics before the query starts "
            "(about 12 s), so that the first real batches run compiled; off: a quicker start, colder first batches"
        ),
    )
    from_group_offsets: bool = Field(
        False,
        description=(
            "start from the consumer group's offsets (reset them first: `shopstream kafka consumer-groups "
            "--reset-offsets … --execute`), on a new checkpoint; the old one is kept beside it"
        ),
    )
    ready_file: Path | None = Field(None, description="touched once the query runs", json_schema_extra=HIDDEN)
    # `shopstream replay --to`: read only below these offsets, then stop; and the live pipeline whose resume point
    # tells a replayed batch from a new one. Set by that command, not flags.
    end_offsets: dict[str, dict[int, int]] | None = Field(
        None, description="stop at these offsets", json_schema_extra=HIDDEN
    )
    replay_of: str | None = Field(None, description="the pipeline this one replays", json_schema_extra=HIDDEN)
    class_archive: Path | None = Field(
        None, description="a class-data archive the driver's JVM maps (infra.runtime.jvm)", json_schema_extra=HIDDEN
    )

    def checkpoint(self, settings: Settings) -> Path:
        return self.checkpoint_dir or settings.runtime_dir / "checkpoints" / settings.topic_prefix / self.pipeline
