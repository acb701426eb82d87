"""The Kafka producer loop: generate, encode, send, count every delivery report.

Idempotent and ``acks=all``, so an acknowledged event is on every in-sync replica
exactly once. Each delivery report is counted as acknowledged or failed (with its
reason); nothing is dropped silently. SIGINT/SIGTERM stop the loop, then flush.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException

from core import kafka
from core.metrics import Metrics
from core.settings import Settings
from producers import resume
from producers.encoding import EventEncoder
from producers.exceptions import ProducerError
from producers.generator import EventGenerator, GeneratedEvent
from producers.manifest import Manifest
from producers.options import ProduceOptions
from producers.pacing import Pacer
from producers.serialization import ConfluentAvroSerializer
from schemas import quality

log = logging.getLogger(__name__)

# Throughput without giving up durability: idempotent acks=all batches of up to 1 MB,
# lz4 (cheap on CPU, ~3x on these records), 5 ms linger to fill them at moderate rates.
PRODUCER_CONFIG = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": 5,
    "batch.size": 1_000_000,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "message.timeout.ms": 60_000,  # a delivery that cannot succeed is reported, not retried forever
    "socket.timeout.ms": 10_000,
}
CHUNK = 256  # events between rate checks, polls and metric flushes
FLUSH_TIMEOUT_S = 90.0  # longer than message.timeout.ms, so every report arrives


@dataclass
class ProduceResult:
    manifest: Manifest
    seconds: float
    stopped_early: bool

    @property
    def events_per_second(self) -> float:
        return self.manifest.produced / self.seconds if self.seconds else 0.0


class ShopProducer:
    def __init__(
        self,
        settings: Settings,
        topics: dict[str, str],
        serializers: dict[tuple[str, int], ConfluentAvroSerializer],
        metrics: Metrics | None = None,
        extra_config: dict | None = None,
    ):
        self.topics = topics
        self.serializers = serializers
        self.metrics = metrics
        self.producer = kafka.producer(
            settings,
            {**PRODUCER_CONFIG, **(extra_config or {}), "error_cb": self._on_client_error},
            logger=logging.getLogger("librdkafka"),
        )
        self.settings = settings
        self.bootstrap = settings.kafka_bootstrap
        self._client_errors: list[str] = []
        self.stop_requested = False
        self.stop: threading.Event | None = None  # set: stop after flushing what was sent (a caller's, not a signal)

    def _on_client_error(self, err: KafkaError) -> None:
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE):
            self._client_errors.append(err.str())
        log.debug("producer client: %s", err.str())

    def check_connection(self, timeout: float = 5.0) -> None:
        """Fail within seconds, with the fix, when the broker or a topic is missing."""
        try:
            meta = self.producer.list_topics(timeout=timeout)
        except KafkaException as exc:
            raise kafka.unreachable(self.settings, exc) from None
        missing = [t for t in self.topics.values() if t not in meta.topics]
        for topic in missing:  # absent from the listing: missing, or hidden by the broker's ACLs
            try:
                error = self.producer.list_topics(topic, timeout=timeout).topics[topic].error
            except KafkaException as exc:
                raise kafka.unreachable(self.settings, exc) from None
            if error is not None and (refusal := kafka.refused(self.settings, topic, error)):
                raise refusal
        if missing:
            raise ProducerError(
                f"topic(s) {', '.join(missing)} do not exist: run `shopstream up` (it creates "
                f"the topics in infra/runtime/topics.yaml) or fix --topic-prefix"
            )

    def _callbacks(self, manifest: Manifest) -> dict[tuple[str, str], Callable]:
        histogram = self.metrics.stage_latency.labels(stage="produce") if self.metrics else None
        failures = self.metrics.delivery_failures if self.metrics else None

        def make(key: tuple[str, str]):
            def on_delivery(err, msg):
                if err is None:
                    manifest.acked[key] += 1
                    if histogram is not None:
                        histogram.observe(msg.latency())
                else:
                    manifest.failed[key] += 1
                    if failures is not None:
                        failures.labels(reason=err.name()).inc()
                    log.warning("delivery to %s failed: %s", msg.topic(), err.str())

            return on_delivery

        keys = [("valid", ""), ("duplicate", "")]
        keys += sorted({(c, r) for c, _, r in quality.all_rules()})
        return {k: make(k) for k in keys}

    def run(
        self,
        generator: EventGenerator,
        options: ProduceOptions,
        manifest: Manifest,
        progress: Callable[[Manifest, float], None] | None = None,
        delivered: dict[int, int] | None = None,
        journal: Callable[[float], None] | None = None,
        elapsed_before: float = 0.0,
    ) -> ProduceResult:
        """Produce ``options``' events. ``delivered`` ({seq: clock µs}, from producers.resume) resumes a killed
        run: its events are made again, those already in Kafka counted and the rest sent, before the run goes
        on, for what is left of its duration after ``elapsed_before``. ``journal(elapsed_s)`` is called every
        second, to keep the run resumable."""
        callbacks = self._callbacks(manifest)
        produce, poll = self.producer.produce, self.producer.poll
        topics, encode = self.topics, EventEncoder(self.serializers, options.seed)
        run_id = options.run_id or ""
        pacer = Pacer(options.rate, options.burst, options.steps)
        generate_hist = self.metrics.stage_latency.labels(stage="generate") if self.metrics else None
        limit = options.count or float("inf")

        def send(event: GeneratedEvent, value: bytes, seq: int) -> None:
            headers: list[tuple[str, str | bytes | None]] = [
                ("produced_at", str(int(time.time() * 1_000_000)).encode()),
                resume.header(run_id, seq, event.generated_us),
            ]
            while True:
                try:
                    produce(
                        topics[event.family],
                        value,
                        event.key,
                        headers=headers,
                        on_delivery=callbacks[(event.category, event.rule)],
                    )
                    return
                except BufferError:  # local queue full: let deliveries drain it
                    poll(0.05)

        # Events by event-time second, for a bounded run's summary; a run --forever keeps none (it would grow without end).
        timeline = manifest.timeline if not options.forever else None
        sent = 0
        if delivered is not None:
            sent = self._resend_missing(generator, encode, manifest, delivered, send)
        base = sent  # the pacer counts this process's own sends
        start = time.monotonic()
        deadline = start + options.duration_s - elapsed_before if options.duration_s else float("inf")
        last_progress = last_journal = start
        while sent < limit and not self.stop_requested:
            now = time.monotonic()
            if now >= deadline or (self.stop is not None and self.stop.is_set()):
                break
            pause = pacer.pause(sent - base, now - start)
            if pause:
                time.sleep(pause)
                poll(0)
                continue
            batch = int(min(CHUNK, limit - sent))
            chunk_started_us = time.time() * 1_000_000
            for seq in range(sent, sent + batch):
                event: GeneratedEvent = next(generator)
                send(event, encode(event), seq)
                manifest.late += event.late
                if timeline is not None:
                    timeline[event.event_us // 1_000_000] += 1
            sent += batch
            manifest.generated = sent
            poll(0)
            if generate_hist is not None:
                generate_hist.observe(max(0.0, (time.time() * 1_000_000 - chunk_started_us) / 1_000_000 / batch))
            if self.metrics:
                self.metrics.stage_events.labels(stage="generate").inc(batch)
            if progress and now - last_progress >= 0.5:
                progress(manifest, now - start)
                last_progress = now
            if journal and now - last_journal >= 1.0:
                journal(now - start)
                last_journal = now
            if self._client_errors and manifest.produced == 0 and now - start > 15:
                raise ProducerError(f"Kafka at {self.bootstrap} stopped answering: {self._client_errors[-1]}")
        stopped_early = self.stop_requested
        remaining = self.producer.flush(FLUSH_TIMEOUT_S)
        elapsed = time.monotonic() - start
        if remaining:
            log.error("%d events were still undelivered when the flush timed out", remaining)
        if self.metrics:
            self.metrics.stage_events.labels(stage="produce").inc(manifest.produced)
        if progress:
            progress(manifest, elapsed)
        return ProduceResult(manifest, elapsed, stopped_early)

    @staticmethod
    def _resend_missing(
        generator: EventGenerator,
        encode: EventEncoder,
        manifest: Manifest,
        delivered: dict[int, int],
        send: Callable[[GeneratedEvent, bytes, int], None],
    ) -> int:
        """Make a killed run's events again, up to the last one found in Kafka: count those found, send the
        rest. Every event is encoded, found or not, so the encoder's own random draws stay in step."""
        upto = max(delivered, default=-1) + 1
        for seq in range(upto):
            generated_us = delivered.get(seq)
            event = generator.replay(generated_us)
            value = encode(event)
            if generated_us is None:
                send(event, value, seq)
            else:
                manifest.acked[(event.category, event.rule)] += 1
            manifest.late += event.late
            manifest.timeline[event.event_us // 1_000_000] += 1
        manifest.generated = upto
        missing = upto - len(delivered)
        log.info(
            "resuming: %d events of the run are in Kafka, %d before them were not and are sent again",
            len(delivered),
            missing,
        )
        return upto
