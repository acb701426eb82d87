from core.exceptions import ShopstreamError


class StreamingError(ShopstreamError):
    """The streaming job cannot run: Spark, the registry or PostgreSQL is unusable."""


class DeadLetterUnavailable(StreamingError):
    """The dead-letter topic did not take a batch's quarantined records: a transient fault, retried."""
