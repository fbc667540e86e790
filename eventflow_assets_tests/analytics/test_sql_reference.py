"""sql/analytics/*.sql, the plain-PostgreSQL versions bench/analytics.py times, give the same rows."""

from __future__ import annotations

import psycopg

from eventflow_assets.storage.postgres import read_sql
from eventflow_assets_tests.analytics import dataset


def query(url, name, before: str | None = None) -> set:
    with psycopg.connect(url) as conn:
        if before:
            conn.execute(before)
        return {tuple(r) for r in conn.execute(read_sql(f"analytics/{name}.sql")).fetchall()}


def test_sql_versions_match_the_expected_outputs(loaded_url):
    trends = dataset.expected_trends()
    users, summary = dataset.expected_segments()
    assert query(loaded_url, "top_revenue_by_currency") == dataset.expected_top_revenue()
    assert query(loaded_url, "conversion_rates") == dataset.expected_conversion()
    assert query(loaded_url, "revenue_trends") == trends["analytics_revenue_trends"]
    assert query(loaded_url, "revenue_trends_hourly") == trends["analytics_revenue_trends_hourly"]
    assert query(loaded_url, "revenue_trends_daily") == trends["analytics_revenue_trends_daily"]
    assert query(loaded_url, "revenue_trends_usd") == trends["analytics_revenue_trends_usd"]
    assert query(loaded_url, "user_segments") == users
    segments = f"CREATE TEMP TABLE segments AS {read_sql('analytics/user_segments.sql')}"
    assert query(loaded_url, "segment_summary", before=segments) == summary
