"""`shopstream produce`: wires pools, generator, registry, serializers and producer."""

from __future__ import annotations

import logging
import signal
import threading
import uuid
from collections.abc import Callable

import schemas
from core import kafka
from core.metrics import serve_metrics
from core.settings import Settings
from producers import resume
from producers.generator import EventGenerator
from producers.manifest import Manifest
from producers.options import ProduceOptions
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
            serializers[(family, version.version)] = ConfluentAvroSerializer(ids[version.version], version.text)
    return serializers


def run(
    settings: Settings,
    options: ProduceOptions,
    progress: Callable[[Manifest, float], None] | None = None,
    metrics_port: int | None = None,
    on_resume: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> ProduceResult:
    """One producer run. With ``options.manifest_path``, the manifest is kept as the run's journal while it runs;
    with ``options.resume``, a killed run is finished from its journal (producers.resume). ``stop``, once set, ends
    the run early (after flushing what was sent), like SIGINT does for the command."""
    journal = resume.load(options.resume) if options.resume else None
    if journal is not None:
        options = journal.options
    elif not options.run_id:
        options = options.model_copy(update={"run_id": uuid.uuid4().hex[:12]})
    if options.load_dimensions:
        from producers.dimensions import load_dimensions

        loaded = load_dimensions(settings, options)
        log.info("dimensions loaded (seed %s): %s", options.seed, loaded)
    generator = EventGenerator(options)
    manifest = Manifest(run_id=options.run_id or "", seed=options.seed)
    topics = schemas.event_topics(settings)
    metrics = serve_metrics(metrics_port, ("generate", "produce"), "producer_metrics_port", settings.metrics_bind)
    producer = ShopProducer(settings, topics, {}, metrics)
    producer.stop = stop
    producer.check_connection()
    producer.serializers = build_serializers(settings)
    delivered, elapsed_before = None, 0.0
    if journal is not None:
        if on_resume:
            on_resume(f"reading run {options.run_id} back from Kafka…")
        delivered = resume.delivered(settings, journal, list(topics.values()))
        elapsed_before = journal.elapsed_s
        if on_resume:
            on_resume(f"{len(delivered):,} of its events are in Kafka; sending the rest")
    elif options.manifest_path:
        journal = resume.Journal(options, kafka.log_end_offsets(settings, list(topics.values())), 0.0, "producing")
    write_journal = None
    if journal is not None and options.manifest_path:
        path = options.manifest_path

        def write_journal(elapsed_s: float, state: str = "producing") -> None:
            journal.elapsed_s, journal.state = elapsed_before + elapsed_s, state
            manifest.journal = journal.to_dict()
            manifest.write(path, timeline=state != "producing")  # the growing timeline: only at the end

        write_journal(0.0)  # before the first send: a run killed at once can be resumed too

    def request_stop(signum, frame):
        log.info("signal %s: stopping after flushing what was sent", signal.Signals(signum).name)
        producer.stop_requested = True

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = producer.run(generator, options, manifest, progress, delivered, write_journal, elapsed_before)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if write_journal is not None:
        write_journal(result.seconds, "stopped" if result.stopped_early else "done")
    elif options.manifest_path:
        manifest.write(options.manifest_path)
    return result
