"""Which windows are final, and the daily partitions of the trends, as pure functions.

A window [start, start + 5 min) of ``revenue_by_currency_5min`` is final once the orders query's
watermark is at or past its end: from then on the query drops every event that would fall into
it, so its rows can no longer change. ``stream_progress`` records the watermark each micro-batch
ran with, after that batch committed its rows.

The trends are partitioned by UTC day, the current day included (``end_offset=1``): a day's run
recomputes the day's windows that are final when it runs, and is requested again each time
another window of the day becomes final. 365 partitions a year stay under Dagster's advised
100,000 per asset for centuries, so the first day never has to move.
"""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg

from eventflow_assets.ingestion.events import WINDOW
from eventflow_assets.periods import DAY, floor_to

UTC = timezone.utc
# The first partition. EventFlow's data starts in November 2026; windows before it are never requested.
FIRST_DAY = datetime(2026, 11, 1, tzinfo=UTC)
WINDOW_FORMAT = "%Y-%m-%d-%H:%M"  # names a window in run keys and messages
DAY_FORMAT = "%Y-%m-%d"  # a partition key

trend_days = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, end_offset=1, timezone="UTC", fmt=DAY_FORMAT)


def window_floor(ts: datetime) -> datetime:
    """Start of the window holding ``ts`` (UTC-aligned, as Spark's ``window()``)."""
    return floor_to(ts, WINDOW)


def day_floor(ts: datetime) -> datetime:
    return floor_to(ts, DAY)


def window_name(window_start: datetime) -> str:
    return window_start.astimezone(UTC).strftime(WINDOW_FORMAT)


def day_key(ts: datetime) -> str:
    """The partition key of the UTC day holding ``ts``."""
    return ts.astimezone(UTC).strftime(DAY_FORMAT)


def day_keys(windows: list[datetime]) -> list[str]:
    """The partition keys of the days holding ``windows`` (ascending), each once."""
    return sorted({day_key(w) for w in windows})


def first_window(earliest_data: datetime, watermark: datetime) -> datetime:
    """Where a sensor with no cursor starts: the earliest window holding data, or the first partition.

    A window that is not final yet can still gain rows, earlier than any written so far (an
    out-of-order event), so the start is no later than the window holding the watermark; the
    windows before that one are final and complete.
    """
    return max(min(window_floor(earliest_data), window_floor(watermark)), FIRST_DAY)


def final_windows(next_window: datetime, watermark: datetime, now: datetime, limit: int) -> list[datetime]:
    """Starts of at most ``limit`` consecutive windows from ``next_window`` that are final.

    A window also has to have ended by ``now``: a watermark ahead of the clock (events stamped
    in the future) does not finalize windows that have not happened.
    """
    start = max(window_floor(next_window), FIRST_DAY)
    through = min(watermark, now)
    windows = []
    while start + WINDOW <= through and len(windows) < limit:
        windows.append(start)
        start += WINDOW
    return windows


def final_through(watermark: datetime) -> datetime:
    """End of the latest final window: every window ending at or before it is final."""
    return window_floor(watermark)


def final_span(start: datetime, end: datetime, watermark: datetime | None) -> tuple[datetime, datetime] | None:
    """The final windows of the partitions [start, end) as [start, end'), or None when none is final yet."""
    if watermark is None:
        return None
    end = min(end, final_through(watermark))
    return (start, end) if end > start else None
