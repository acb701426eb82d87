"""One module per local service, in start order."""
