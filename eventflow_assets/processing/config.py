"""The streaming job's settings. Apart from queries.py so that the `eventflow` command can show
their defaults in `--help` without importing Spark (~0.2 s on every command)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from eventflow_assets.ingestion.events import WATERMARK_DELAY, WINDOW, minutes


@dataclass(frozen=True)
class StreamConfig:
    trigger_seconds: float = 10.0
    watermark: str = f"{minutes(WATERMARK_DELAY)} minutes"  # Spark's interval syntax
    window: timedelta = WINDOW
    # The seed reads from "latest"; we start from "earliest" so a first start loses nothing
    # the topics already hold. Restarts resume from the checkpoint either way.
    starting_offsets: str = "earliest"
    max_offsets_per_trigger: int | None = None
    fail_on_data_loss: bool = True
    # Spark's own Kafka connector; "eventflow_kafka" is EventFlow's Python source (same options,
    # same schema), which speaks librdkafka's property names.
    source_format: str = "kafka"
    available_now: bool = False

    def with_overrides(self, **changes) -> StreamConfig:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
