from core.exceptions import ShopstreamError


class StreamingError(ShopstreamError):
    """The streaming job cannot run: Spark, the registry or PostgreSQL is unusable."""
