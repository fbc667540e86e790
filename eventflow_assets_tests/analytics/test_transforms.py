"""The pure transforms on in-memory DataFrames shaped like the JDBC reads: exact outputs."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from eventflow_assets.analytics import transforms
from eventflow_assets_tests.analytics import dataset
from eventflow_assets_tests.analytics.dataset import WINDOW, ts


@pytest.fixture(scope="module")
def frames(spark):
    revenue = spark.createDataFrame(
        [(ts(s), ts(s) + WINDOW, c, D(t), n) for s, c, t, n in dataset.REVENUE],
        "window_start timestamp, window_end timestamp, currency string, total_revenue decimal(16,2), "
        "order_count bigint")
    funnel = spark.createDataFrame([(ts(s), u, v, o) for s, u, v, o in dataset.FUNNEL],
                                   "window_start timestamp, user_id string, view_count bigint, order_count bigint")
    orders = spark.createDataFrame([(u, D(p), c) for u, p, c in dataset.ORDERS],
                                   "user_id string, price decimal(12,2), currency string")
    rates = spark.createDataFrame([(c, r) for c, r in dataset.RATES.items()], "currency string, usd_rate decimal(12,6)")
    return revenue, funnel, orders, rates


def rows(df) -> set:
    return {tuple(r.values()) for r in df.toArrow().to_pylist()}


def test_top_revenue_uses_true_average_and_usd_rates(frames):
    revenue, _, _, rates = frames
    got = rows(transforms.top_revenue_by_currency(revenue, rates))
    assert got == dataset.expected_top_revenue()
    by_currency = {r[0]: r for r in got}
    # 450.05 / 14 = 32.146...; the seed's average of the windows' averages would be 48.89.
    assert by_currency["USD"] == ("USD", D("450.05"), 14, D("32.15"), D("450.05"))
    assert by_currency["EUR"] == ("EUR", D("345.49"), 8, D("43.19"), D("373.13"))
    assert by_currency["CAD"][3] == D("5.03")  # 5.025 rounds HALF UP
    assert by_currency["JPY"][4] is None  # no rate


def test_conversion_rates(frames):
    _, funnel, _, _ = frames
    got = {r[0]: r[1:] for r in rows(transforms.conversion_rates(funnel))}
    assert set(got.items()) == {(r[0], r[1:]) for r in dataset.expected_conversion()}
    assert got == {"u_a": (10, 3, D("30.00")), "u_b": (3, 0, D("0.00")), "u_c": (0, 2, None),
                   "u_d": (3, 1, D("33.33")), "u_e": (800, 1, D("0.13")), "u_f": (2, 5, D("250.00")),
                   "u_g": (3, 2, D("66.67"))}


def test_revenue_trends_windows_hourly_daily_and_usd(frames):
    revenue, _, _, rates = frames
    trends = transforms.revenue_trends(revenue, rates)
    expected = dataset.expected_trends()
    assert rows(trends.five_min) == expected["analytics_revenue_trends"]
    assert rows(trends.hourly) == expected["analytics_revenue_trends_hourly"]
    assert rows(trends.daily) == expected["analytics_revenue_trends_daily"]
    assert rows(trends.usd) == expected["analytics_revenue_trends_usd"]
    usd = {(g, p): (u, n) for g, p, u, n in rows(trends.usd)}
    # 2026-11-24 01:00: EUR 99.99 x 1.08 + GBP 10.01 x 1.27 + CAD 10.05 x 0.73 = 128.0370 (JPY has no rate).
    assert usd[("hour", ts("2026-11-24 01:00"))] == (D("128.04"), 6)
    assert usd[("day", ts("2026-11-23 00:00"))] == (D("149.14"), 3)
    assert usd[("day", ts("2026-11-24 00:00"))] == (D("694.09"), 23)
    assert {p for g, p in usd if g == "hour"} == {ts("2026-11-23 23:00"), ts("2026-11-24 00:00"),
                                                   ts("2026-11-24 01:00")}


def test_user_segments_and_summary(frames):
    _, _, orders, rates = frames
    segments = transforms.user_segments(orders, rates)
    got = rows(segments)
    assert got == {(u, *v) for u, v in dataset.HAND_SEGMENTS.items()}
    assert (got, rows(transforms.segment_summary(segments))) == dataset.expected_segments()
    assert rows(transforms.segment_summary(segments)) == {(s, *v) for s, v in dataset.HAND_SUMMARY.items()}


def test_segment_summary_lists_empty_segments(spark):
    one_vip = spark.createDataFrame([("x", "VIP", D("1500.00"), 2)],
                                    "user_id string, segment string, total_spend_usd decimal(20,2), order_count bigint")
    assert rows(transforms.segment_summary(one_vip)) == {
        ("VIP", 1, D("1500.00"), D("1500.00"), 2), ("Premium", 0, D("0.00"), None, 0),
        ("Regular", 0, D("0.00"), None, 0), ("New", 0, D("0.00"), None, 0)}


def test_rollups_use_utc_periods_whatever_the_session_time_zone(spark, frames):
    revenue, _, _, rates = frames
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        daily = rows(transforms.revenue_trends(revenue, rates).daily)
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    assert {r[0] for r in daily} == {ts("2026-11-23 00:00"), ts("2026-11-24 00:00")}
