"""``producer_job``: publish a bounded burst of generated events, to drive a demo from the UI."""

import dagster as dg
from pydantic import Field

from eventflow_assets.ingestion.generator import EventGenerator
from eventflow_assets.ingestion.producer import produce
from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.orchestration.resources import EventFlowEndpoints

PRODUCER_JOB = "producer_job"


class ProducerConfig(dg.Config):
    count: int | None = Field(default=1000, ge=0, description="Events to publish (across the three topics).")
    duration_seconds: float | None = Field(default=None, gt=0, description="Stop after this long.")
    rate: float | None = Field(default=100.0, gt=0, description="Events per second; unset: as fast as possible.")
    seed: int | None = Field(default=None, description="Seed for reproducible users, products and ids.")


@dg.op(description="Publish generated events (the producer of `eventflow produce`); fails if any delivery failed.")
def produce_events(context: dg.OpExecutionContext, config: ProducerConfig, eventflow: EventFlowEndpoints) -> None:
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
        **{f"delivered_{topic}": n for topic, n in sorted(stats.by_topic.items())},
    }
    if stats.failed:
        reasons = "; ".join(f"{n} x {reason}" for reason, n in stats.errors.most_common(5))
        raise dg.Failure(description=f"{stats.failed} of {stats.sent} deliveries failed: {reasons}", metadata=metadata)
    context.add_output_metadata(metadata)
    context.log.info(f"{stats.delivered} events acknowledged in {stats.elapsed:.1f}s")


@dg.job(name=PRODUCER_JOB, executor_def=dg.in_process_executor,
        description="Publish a bounded number of generated events (op config: count or duration_seconds, rate).")
def producer_job() -> None:
    produce_events()
