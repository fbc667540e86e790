"""Window finality and the trends' daily partitions as pure functions, checked against Dagster's own
partition windows."""

from datetime import datetime, timedelta, timezone

import pytest

from eventflow_assets.orchestration.windows import (
    FIRST_DAY,
    day_key,
    day_keys,
    final_span,
    final_through,
    final_windows,
    first_window,
    trend_days,
    window_floor,
    window_name,
)

UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


NOW = at("2026-11-20 12:00:00")


@pytest.mark.parametrize("ts, start", [
    ("2026-11-20 10:00:00", "2026-11-20 10:00:00"),
    ("2026-11-20 10:04:59", "2026-11-20 10:00:00"),
    ("2026-11-20 10:05:00", "2026-11-20 10:05:00"),
    ("2026-11-20 23:59:59", "2026-11-20 23:55:00"),
])
def test_window_floor(ts, start):
    assert window_floor(at(ts)) == at(start)


def test_floor_of_a_non_utc_time_is_the_utc_window():
    tz = timezone(timedelta(hours=5, minutes=30))
    assert window_floor(datetime(2026, 11, 20, 15, 33, tzinfo=tz)) == at("2026-11-20 10:00:00")


def test_partition_keys_are_dagsters_utc_days():
    assert window_name(at("2026-11-20 10:05:00")) == "2026-11-20-10:05"
    # 01:30 on the 21st in UTC+05:30 is still the 20th in UTC.
    assert day_key(datetime(2026, 11, 21, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))) == "2026-11-20"
    dagster_day = trend_days.time_window_for_partition_key("2026-11-20")
    assert (dagster_day.start.timestamp(), dagster_day.end.timestamp()) == (
        at("2026-11-20 00:00:00").timestamp(), at("2026-11-21 00:00:00").timestamp())
    assert trend_days.get_first_partition_key() == day_key(FIRST_DAY) == "2026-11-01"
    assert day_keys([at("2026-11-21 00:00:00"), at("2026-11-20 23:55:00"), at("2026-11-20 10:00:00")]) == [
        "2026-11-20", "2026-11-21"]


def test_todays_partition_exists_while_the_day_runs():
    # A window finalizing during the day needs its day to be a partition already (end_offset=1).
    for now in (at("2026-11-20 00:10:00"), at("2026-11-20 23:59:59")):
        assert trend_days.get_partition_keys(current_time=now)[-1] == "2026-11-20"


def test_partition_count_stays_within_dagsters_advice_for_a_century():
    century_later = FIRST_DAY.replace(year=FIRST_DAY.year + 100)
    count = len(trend_days.get_partition_keys(current_time=century_later))
    assert count == (century_later - FIRST_DAY).days + 1  # one a day, today's included
    assert count < 100_000


def test_no_window_is_final_until_the_watermark_reaches_its_end():
    assert final_windows(at("2026-11-20 10:00:00"), at("2026-11-20 10:04:59"), NOW, 12) == []


def test_a_window_is_final_exactly_at_its_end():
    assert final_windows(at("2026-11-20 10:00:00"), at("2026-11-20 10:05:00"), NOW, 12) == [at("2026-11-20 10:00:00")]


def test_several_windows_finalize_at_once_up_to_the_limit():
    start = at("2026-11-20 10:00:00")
    assert final_windows(start, at("2026-11-20 10:17:30"), NOW, 12) == [
        start, at("2026-11-20 10:05:00"), at("2026-11-20 10:10:00")]
    assert final_windows(start, at("2026-11-20 11:00:00"), NOW, 4) == [start + i * timedelta(minutes=5)
                                                                      for i in range(4)]


def test_windows_past_the_clock_are_not_final():
    # Events stamped in the future put the watermark ahead of the clock.
    assert final_windows(at("2026-11-20 11:50:00"), at("2026-11-20 13:00:00"), NOW, 12) == [
        at("2026-11-20 11:50:00"), at("2026-11-20 11:55:00")]


def test_first_window_starts_at_the_data_or_the_first_day():
    watermark = at("2026-11-20 11:00:00")
    assert first_window(at("2026-11-20 10:03:10"), watermark) == at("2026-11-20 10:00:00")
    assert first_window(FIRST_DAY - timedelta(days=3), watermark) == FIRST_DAY


def test_first_window_is_no_later_than_the_window_still_open_at_the_watermark():
    # Rows so far start at 10:05, but the window holding the watermark (09:55) can still get an
    # out-of-order event: it is not final, so the sensor must not start after it.
    assert first_window(at("2026-11-20 10:05:00"), at("2026-11-20 09:58:00")) == at("2026-11-20 09:55:00")


def test_windows_before_the_first_day_are_never_requested():
    assert final_windows(FIRST_DAY - timedelta(minutes=10), FIRST_DAY + timedelta(minutes=11), NOW, 12) == [
        FIRST_DAY, FIRST_DAY + timedelta(minutes=5)]


def test_final_through_is_the_end_of_the_latest_final_window():
    assert final_through(at("2026-11-20 10:09:59")) == at("2026-11-20 10:05:00")
    assert final_through(at("2026-11-20 10:10:00")) == at("2026-11-20 10:10:00")


def test_a_days_run_covers_its_final_windows_only():
    day, next_day = at("2026-11-20 00:00:00"), at("2026-11-21 00:00:00")
    assert final_span(day, next_day, at("2026-11-20 10:12:00")) == (day, at("2026-11-20 10:10:00"))
    assert final_span(day, next_day, at("2026-11-22 03:00:00")) == (day, next_day)  # the whole day is final
    assert final_span(day, next_day, at("2026-11-20 00:04:59")) is None  # not even 00:00 is final
    assert final_span(day, next_day, at("2026-11-19 23:00:00")) is None
    assert final_span(day, next_day, None) is None  # no order streamed
    # A range of days (a backlog or a backfill): through the watermark's last final window.
    assert final_span(at("2026-11-18 00:00:00"), next_day, at("2026-11-20 00:05:00")) == (
        at("2026-11-18 00:00:00"), at("2026-11-20 00:05:00"))
