from core.exceptions import ShopstreamError


class StreamingError(ShopstreamError):
    """The streaming job cannot run: Spark, the registry or PostgreSQL is unusable."""


class DeadLetterUnavailable(StreamingError):
    """The dead-letter topic did not take a batch's quarantined records: a transient fault, retried."""


class SchemasChanged(StreamingError):
    """A batch holds records of schema versions registered after the query started: the query is restarted, warm,
    with them (a planned restart, not a failure). Raised out of foreachBatch so Spark does not commit the batch."""


class StagingMismatch(StreamingError):
    """The rows a batch staged in PostgreSQL are not the records it read (per partition): the batch is not committed.
    Permanent: the same input stages the same rows again, so a retry would not help."""
