"""The producer: publish generated events, keyed by userId, acks=all, idempotent.

Partitioning is ``murmur2_random``: murmur2 of the key like the Java client's default
partitioner, so Java and Python producers place a user in the same partition number.
Deliveries are counted from the broker's acknowledgements; a failure is never ignored. Each
acknowledgement's latency (``produce()`` to the broker's ack, librdkafka's ``Message.latency()``)
is kept, the newest ``LATENCY_SAMPLES`` per topic, for the percentiles ``producer_job`` reports.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from eventflow_assets.ingestion.generator import EventGenerator
from eventflow_assets.ingestion.kafka_clients import producer as make_producer

DEFAULT_DELAY_MS = 100.0
LATENCY_SAMPLES = 50_000  # per topic: bounded memory under `eventflow up`'s endless producer

PRODUCER_CONFIG = {
    "acks": "all",
    "enable.idempotence": True,
    "partitioner": "murmur2_random",
    "linger.ms": 20,
    "batch.num.messages": 10000,
    "queue.buffering.max.messages": 500000,
    "queue.buffering.max.kbytes": 262144,
    "message.timeout.ms": 120000,
}


@dataclass
class ProduceStats:
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    by_topic: Counter = field(default_factory=Counter)
    sent_by_topic: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    ack_latencies: dict[str, deque] = field(default_factory=dict)  # topic -> seconds, newest last
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        return self.delivered / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def in_flight(self) -> int:
        return self.sent - self.delivered - self.failed

    def record_delivery(self, err, msg) -> None:
        """The producer's delivery report for one record: acknowledged (with its latency) or failed."""
        if err is not None:
            self.failed += 1
            self.errors[err.str()] += 1
            return
        self.delivered += 1
        self.by_topic[msg.topic()] += 1
        latency = msg.latency()
        if latency is not None:
            kept = self.ack_latencies.get(msg.topic())
            if kept is None:
                kept = self.ack_latencies[msg.topic()] = deque(maxlen=LATENCY_SAMPLES)
            kept.append(latency)

    def error_rate(self, topic: str | None = None) -> float:
        """Share of the sent events (of ``topic``, or all) that were not acknowledged; 0.0 if none sent.
        Counted once the run ends: events still in flight are not failures yet."""
        sent = self.sent if topic is None else self.sent_by_topic[topic]
        delivered = self.delivered if topic is None else self.by_topic[topic]
        return (sent - delivered) / sent if sent else 0.0

    def ack_latency_ms(self, quantile: float, topic: str | None = None) -> float | None:
        """The ``quantile`` (0-1, nearest rank) of the kept acknowledgement latencies in ms; None before any ack."""
        samples = sorted(self.ack_latencies.get(topic, ()) if topic is not None
                         else (x for q in self.ack_latencies.values() for x in q))
        if not samples:
            return None
        return samples[max(0, math.ceil(quantile * len(samples)) - 1)] * 1000.0


def produce(kafka_config: dict, generator: EventGenerator, *, count: int | None = None,
            rate: float | None = None, duration: float | None = None,
            stop: threading.Event | None = None, on_progress: Callable[[ProduceStats], None] | None = None,
            progress_every: float = 1.0, flush_timeout: float = 120.0, **overrides) -> ProduceStats:
    """Send events until ``count`` are sent, ``duration`` seconds pass, or ``stop`` is set.

    ``rate`` is events per second (None: as fast as the broker takes them). Returns once every
    sent event is acknowledged or has failed (or ``flush_timeout`` passes; what is still in
    flight then is counted as failed).
    """
    if count is not None and count < 0:
        raise ValueError("count must be >= 0")
    if rate is not None and rate <= 0:
        raise ValueError("rate must be > 0 events/s")
    stats = ProduceStats()
    p = make_producer({**PRODUCER_CONFIG, **kafka_config, **overrides})
    stop = stop or threading.Event()
    deadline = None if duration is None else stats.started + duration
    next_report = stats.started + progress_every
    n = 0
    while (count is None or n < count) and not stop.is_set():
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            break
        if now >= next_report:
            next_report = now + progress_every
            if on_progress:
                on_progress(stats)
        if rate is not None:
            due = stats.started + n / rate
            if now < due:
                p.poll(min(due - now, 0.1))  # wait, serving delivery reports
                continue
        topic, key, value = generator.next_event()
        if not _produce_one(p, topic, key, value, stats.record_delivery, stop):
            break
        n += 1
        stats.sent = n
        stats.sent_by_topic[topic] += 1
        if n & 1023 == 0:
            p.poll(0)
    _flush(p, stats, flush_timeout, on_progress, next_report, progress_every)
    stats.finished = time.monotonic()
    return stats


def _flush(p, stats: ProduceStats, timeout: float, on_progress: Callable[[ProduceStats], None] | None,
           next_report: float, progress_every: float) -> None:
    """Wait up to ``timeout`` for every sent record's acknowledgement, still reporting progress; what is
    in flight then is counted as failed."""
    deadline = time.monotonic() + timeout
    while stats.in_flight and time.monotonic() < deadline:
        p.flush(min(1.0, deadline - time.monotonic()))
        if on_progress and time.monotonic() >= next_report:
            next_report = time.monotonic() + progress_every
            on_progress(stats)
    lost = stats.in_flight
    if lost:
        stats.failed += lost
        stats.errors[f"no acknowledgement within {timeout:.0f}s"] += lost


def _produce_one(p, topic: str, key: bytes, value: bytes, on_delivery, stop: threading.Event) -> bool:
    """Enqueue one record, waiting while the local queue is full. False if stopped meanwhile."""
    while True:
        try:
            p.produce(topic, value, key, on_delivery=on_delivery)
            return True
        except BufferError:  # local queue full: let the broker catch up
            p.poll(0.05)
            if stop.is_set():
                return False
