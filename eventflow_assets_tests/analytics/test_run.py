"""run_analyses against a real PostgreSQL through JDBC: exact tables, idempotence, ranged trends."""

from __future__ import annotations

from decimal import Decimal as D

import psycopg

from eventflow_assets.analytics.run import TRENDS, run_analyses
from eventflow_assets_tests.analytics import dataset
from eventflow_assets_tests.analytics.dataset import ts
from eventflow_assets_tests.helpers import table_rows

ANALYTICS_TABLES = ("analytics_top_revenue_by_currency", "analytics_conversion_rates", "analytics_revenue_trends",
                    "analytics_revenue_trends_hourly", "analytics_revenue_trends_daily",
                    "analytics_revenue_trends_usd", "analytics_user_segments", "analytics_segment_summary")


def snapshot(url) -> dict:
    return {t: table_rows(url, t) for t in ANALYTICS_TABLES}


def expected_tables() -> dict:
    users, summary = dataset.expected_segments()
    return {"analytics_top_revenue_by_currency": dataset.expected_top_revenue(),
            "analytics_conversion_rates": dataset.expected_conversion(),
            **dataset.expected_trends(),
            "analytics_user_segments": users, "analytics_segment_summary": summary}


def test_tables_are_exact_and_a_second_run_leaves_them_identical(spark, loaded_url):
    results = run_analyses(spark, loaded_url)
    first = snapshot(loaded_url)
    assert first == expected_tables()
    assert first["analytics_segment_summary"] == {(s, *v) for s, v in dataset.HAND_SUMMARY.items()}
    assert results["user_segments"].written == {"analytics_user_segments": 10, "analytics_segment_summary": 4}
    assert results["revenue_trends"].warnings == ["no rate in currency_rates for JPY: left out of USD amounts"]

    run_analyses(spark, loaded_url)
    assert snapshot(loaded_url) == first


def test_a_trends_range_replaces_only_the_windows_hours_and_days_it_touches(spark, loaded_url):
    run_analyses(spark, loaded_url)
    before = snapshot(loaded_url)
    # Change the source inside and outside [2026-11-24 01:00, 01:30), and add a window inside it.
    changed = [(s, c, "199.99" if (s, c) == ("2026-11-24 01:10", "EUR") else
                "999.99" if (s, c) == ("2026-11-23 23:55", "USD") else t, n) for s, c, t, n in dataset.REVENUE]
    with psycopg.connect(loaded_url) as conn:
        conn.execute("DELETE FROM revenue_by_currency_5min")
    dataset.load(loaded_url, revenue=changed, funnel=[], orders=[])
    dataset.load(loaded_url, revenue=[("2026-11-24 01:25", "USD", "5.00", 1)], funnel=[], orders=[])
    changed.append(("2026-11-24 01:25", "USD", "5.00", 1))

    results = run_analyses(spark, loaded_url, (ts("2026-11-24 01:00"), ts("2026-11-24 01:30")), analyses=(TRENDS,))

    assert set(results) == {TRENDS}
    new = dataset.expected_trends(changed)
    after = snapshot(loaded_url)
    in_range = {"analytics_revenue_trends": lambda r: ts("2026-11-24 01:00") <= r[0] < ts("2026-11-24 01:30"),
                "analytics_revenue_trends_hourly": lambda r: r[0] == ts("2026-11-24 01:00"),
                "analytics_revenue_trends_daily": lambda r: r[0] == ts("2026-11-24 00:00"),
                "analytics_revenue_trends_usd": lambda r: (r[0], r[1]) in {
                    ("5min", ts("2026-11-24 01:10")), ("5min", ts("2026-11-24 01:15")),
                    ("5min", ts("2026-11-24 01:25")), ("hour", ts("2026-11-24 01:00")),
                    ("day", ts("2026-11-24 00:00"))}}
    for table, inside in in_range.items():
        assert after[table] == ({r for r in new[table] if inside(r)}
                                | {r for r in before[table] if not inside(r)}), table
    # The day outside the range keeps its old USD total although its source changed.
    assert ("day", ts("2026-11-23 00:00"), D("149.14"), 3) in after["analytics_revenue_trends_usd"]
    assert ("hour", ts("2026-11-24 01:00"), D("241.04"), 7) in after["analytics_revenue_trends_usd"]
    for table in set(ANALYTICS_TABLES) - set(in_range):
        assert after[table] == before[table], table


def test_without_write_nothing_is_written(spark, loaded_url):
    results = run_analyses(spark, loaded_url, analyses=("conversion_rates",), write=False)
    assert {tuple(r.values()) for r in results["conversion_rates"].tables["analytics_conversion_rates"].to_pylist()} \
        == dataset.expected_conversion()
    assert table_rows(loaded_url, "analytics_conversion_rates") == set()
