"""Generator and Kafka producer: realistic shop events, Avro-encoded, schema-governed."""


def run(settings, options, **kwargs):
    """Produce events per ``options``; see producers.app.run."""
    from producers.app import run as _run

    return _run(settings, options, **kwargs)
