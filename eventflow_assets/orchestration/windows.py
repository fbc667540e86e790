"""Which 5-minute windows are final, as pure functions the analytics sensors build on.

A window [start, start + 5 min) of ``revenue_by_currency_5min`` is final once the orders query's
watermark is at or past its end: from then on the query drops every event that would fall into
it, so its rows can no longer change. ``stream_progress`` records the watermark each micro-batch
ran with, after that batch committed its rows.

The partitions start on a fixed recent date: 5-minute partitions add ~105,000 a year and Dagster
advises at most ~100,000 per asset, so move ``TRENDS_START`` forward (older windows keep their
rows, they just stop being partitions) before that count is reached.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg

UTC = timezone.utc
WINDOW = timedelta(minutes=5)
TRENDS_START = datetime(2026, 11, 1, tzinfo=UTC)
PARTITION_FORMAT = "%Y-%m-%d-%H:%M"

five_minute_windows = dg.TimeWindowPartitionsDefinition(
    cron_schedule="*/5 * * * *", start=TRENDS_START, fmt=PARTITION_FORMAT, timezone="UTC")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def window_floor(ts: datetime) -> datetime:
    """Start of the 5-minute window holding ``ts`` (UTC-aligned, as Spark's ``window()``)."""
    return _EPOCH + ((ts.astimezone(UTC) - _EPOCH) // WINDOW) * WINDOW


def partition_key(window_start: datetime) -> str:
    return window_start.astimezone(UTC).strftime(PARTITION_FORMAT)


def window_of(key: str) -> datetime:
    return datetime.strptime(key, PARTITION_FORMAT).replace(tzinfo=UTC)


def first_window(earliest_data: datetime, watermark: datetime) -> datetime:
    """Where a sensor with no cursor starts: the earliest window holding data, or the first partition.

    A window that is not final yet can still gain rows, earlier than any written so far (an
    out-of-order event), so the start is no later than the window holding the watermark; the
    windows before that one are final and complete.
    """
    return max(min(window_floor(earliest_data), window_floor(watermark)), TRENDS_START)


def final_windows(next_window: datetime, watermark: datetime, now: datetime, limit: int) -> list[datetime]:
    """Starts of at most ``limit`` consecutive windows from ``next_window`` that are final.

    A window also has to exist as a partition (end at or before ``now``): a watermark ahead of
    the clock (events stamped in the future) does not invent partitions.
    """
    start = max(window_floor(next_window), TRENDS_START)  # TRENDS_START may have moved forward
    through = min(watermark, now)
    windows = []
    while start + WINDOW <= through and len(windows) < limit:
        windows.append(start)
        start += WINDOW
    return windows


def final_through(watermark: datetime) -> datetime:
    """End of the latest final window: every window ending at or before it is final."""
    return window_floor(watermark)
