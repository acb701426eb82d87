"""`shopstream produce`: wires pools, generator, registry, serializers and producer."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

import schemas
from core.metrics import serve_metrics
from core.settings import ProduceOptions, Settings
from producers.generator import EventGenerator
from producers.manifest import Manifest
from producers.producer import ProduceResult, ShopProducer
from producers.serialization import ConfluentAvroSerializer
from schemas.registry import register_family, registry_client

log = logging.getLogger(__name__)


def build_serializers(settings: Settings) -> dict[tuple[str, int], ConfluentAvroSerializer]:
    """Register every schema version (idempotent) and make one serializer per (family, version)."""
    client = registry_client(settings.registry_url)
    serializers = {}
    for family, topic in schemas.event_topics(settings).items():
        ids = register_family(client, settings.registry_url, family, topic)
        for version in schemas.versions(family):
            serializers[(family, version.version)] = ConfluentAvroSerializer(ids[version.version], version.parsed)
    return serializers


def run(settings: Settings, options: ProduceOptions,
        progress: Callable[[Manifest, float], None] | None = None, metrics_port: int | None = None) -> ProduceResult:
    generator = EventGenerator(options)
    manifest = Manifest(run_id=options.run_id or "", seed=options.seed)
    topics = schemas.event_topics(settings)
    metrics = serve_metrics(metrics_port, ("generate", "produce"), "producer_metrics_port")
    producer = ShopProducer(settings, topics, {}, metrics)
    producer.check_connection()
    producer.serializers = build_serializers(settings)

    def request_stop(signum, frame):
        log.info("signal %s: stopping after flushing what was sent", signal.Signals(signum).name)
        producer.stop_requested = True

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = producer.run(generator, options, manifest, progress)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if options.manifest_path:
        manifest.write(options.manifest_path)
    return result
