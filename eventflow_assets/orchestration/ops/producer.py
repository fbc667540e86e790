"""The op of ``producer_job`` (orchestration/jobs.py): publish a bounded burst of generated events, to drive a demo from the UI.

Besides its output metadata (the run's totals), the op logs an ``AssetObservation`` of each topic
it sent to, with that topic's error rate and acknowledgement latency: a job's output has no plot,
a topic asset's observations do (its Metadata > Plots draws them over the runs).
"""

import dagster as dg
from pydantic import Field

from eventflow_assets.ingestion.generator import EventGenerator
from eventflow_assets.ingestion.producer import ProduceStats, produce
from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.orchestration.assets.keys import topic_key
from eventflow_assets.orchestration.resources import EventFlowEndpoints


class ProducerConfig(dg.Config):
    count: int | None = Field(default=1000, ge=0, description="Events to publish (across the three topics).")
    duration_seconds: float | None = Field(default=None, gt=0, description="Stop after this long.")
    rate: float | None = Field(default=100.0, gt=0, description="Events per second; unset: as fast as possible.")
    seed: int | None = Field(default=None, description="Seed for reproducible users, products and ids.")


def _latencies(stats: ProduceStats, topic: str | None = None) -> dict:
    """Acknowledgement latency percentiles in ms (absent when nothing was acknowledged)."""
    out = {}
    for name, q in (("p50", 0.5), ("p95", 0.95), ("max", 1.0)):
        value = stats.ack_latency_ms(q, topic)
        if value is not None:
            out[f"ack_latency_ms_{name}"] = round(value, 3)
    return out


def producer_observations(stats: ProduceStats) -> list[dg.AssetObservation]:
    """One observation per topic sent to: sent, delivered, error rate and ack latencies, prefixed
    ``producer_`` beside topic_observations' own figures."""
    return [dg.AssetObservation(asset_key=topic_key(topic), metadata={
        "producer_sent": sent,
        "producer_delivered": stats.by_topic[topic],
        "producer_error_rate": stats.error_rate(topic),
        **{f"producer_{k}": v for k, v in _latencies(stats, topic).items()}})
        for topic, sent in sorted(stats.sent_by_topic.items())]


@dg.op(description="Publish generated events (the producer of `eventflow produce`); fails if any delivery failed. "
                   "Reports the error rate and acknowledgement latency (p50/p95/max ms), in total and per topic.")
def produce_events(context: dg.OpExecutionContext, config: ProducerConfig, eventflow: EventFlowEndpoints):
    if config.count is None and config.duration_seconds is None:
        raise dg.Failure(description="set `count` or `duration_seconds`: producer_job runs are bounded")
    kafka = eventflow.endpoints().kafka_config()
    provision_topics(kafka)
    stats = produce(kafka, EventGenerator(seed=config.seed), count=config.count, rate=config.rate,
                    duration=config.duration_seconds)
    metadata = {
        "delivered": stats.delivered,
        "failed": stats.failed,
        "elapsed_s": round(stats.elapsed, 3),
        "events_per_s": round(stats.rate, 1),
        "error_rate": stats.error_rate(),
        **_latencies(stats),
        **{f"delivered_{topic}": n for topic, n in sorted(stats.by_topic.items())},
    }
    # Yielded, not context.log_event'ed: events logged that way are dropped when the op then fails.
    yield from producer_observations(stats)
    if stats.failed:
        reasons = "; ".join(f"{n} x {reason}" for reason, n in stats.errors.most_common(5))
        raise dg.Failure(description=f"{stats.failed} of {stats.sent} deliveries failed: {reasons}", metadata=metadata)
    context.log.info(f"{stats.delivered} events acknowledged in {stats.elapsed:.1f}s")
    yield dg.Output(None, metadata=metadata)
