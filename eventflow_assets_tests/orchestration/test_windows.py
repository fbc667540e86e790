"""Window finality as pure functions, checked against Dagster's own partition windows."""

from datetime import datetime, timedelta, timezone

import pytest

from eventflow_assets.orchestration.windows import (TRENDS_START, final_through, final_windows, first_window,
                                                    five_minute_windows, partition_key, window_floor, window_of)

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


def test_partition_keys_are_dagsters_windows():
    window = at("2026-11-20 10:05:00")
    key = partition_key(window)
    assert key == "2026-11-20-10:05"
    assert window_of(key) == window
    dagster_window = five_minute_windows.time_window_for_partition_key(key)
    assert (dagster_window.start.timestamp(), dagster_window.end.timestamp()) == (
        window.timestamp(), (window + timedelta(minutes=5)).timestamp())
    assert five_minute_windows.get_first_partition_key() == partition_key(TRENDS_START)


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


def test_windows_past_the_clock_are_not_partitions_yet():
    # Events stamped in the future put the watermark ahead of the clock.
    assert final_windows(at("2026-11-20 11:50:00"), at("2026-11-20 13:00:00"), NOW, 12) == [
        at("2026-11-20 11:50:00"), at("2026-11-20 11:55:00")]


def test_first_window_starts_at_the_data_or_the_first_partition():
    watermark = at("2026-11-20 11:00:00")
    assert first_window(at("2026-11-20 10:03:10"), watermark) == at("2026-11-20 10:00:00")
    assert first_window(TRENDS_START - timedelta(days=3), watermark) == TRENDS_START


def test_first_window_is_no_later_than_the_window_still_open_at_the_watermark():
    # Rows so far start at 10:05, but the window holding the watermark (09:55) can still get an
    # out-of-order event: it is not final, so the sensor must not start after it.
    assert first_window(at("2026-11-20 10:05:00"), at("2026-11-20 09:58:00")) == at("2026-11-20 09:55:00")


def test_a_cursor_before_the_first_partition_resumes_at_the_first_partition():
    # TRENDS_START moved forward past a saved cursor: no key before the first partition.
    assert final_windows(TRENDS_START - timedelta(minutes=10), TRENDS_START + timedelta(minutes=11), NOW, 12) == [
        TRENDS_START, TRENDS_START + timedelta(minutes=5)]


def test_final_through_is_the_end_of_the_latest_final_window():
    assert final_through(at("2026-11-20 10:09:59")) == at("2026-11-20 10:05:00")
    assert final_through(at("2026-11-20 10:10:00")) == at("2026-11-20 10:10:00")
