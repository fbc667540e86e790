"""UTC periods (windows, hours, days) aligned on the epoch, as Spark's ``window()`` aligns them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def floor_to(ts: datetime, step: timedelta) -> datetime:
    """Start of the UTC period of length ``step`` (a window, an hour, a day) that contains ``ts``."""
    return _EPOCH + ((ts.astimezone(timezone.utc) - _EPOCH) // step) * step


def ceil_to(ts: datetime, step: timedelta) -> datetime:
    start = floor_to(ts, step)
    return start if start == ts else start + step
