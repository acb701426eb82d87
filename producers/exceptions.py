from core.exceptions import ShopstreamError


class ProducerError(ShopstreamError):
    """The producer cannot do its job: broker or registry unreachable, topic missing."""
