"""The writer alone: whole-table and ranged replacement, all-or-nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pyarrow as pa
import pytest

from eventflow_assets.analytics.writer import OutOfScope, Replacement, replace
from eventflow_assets.storage.schema import apply_schema
from eventflow_assets_tests.analytics.dataset import ts
from eventflow_assets_tests.helpers import table_rows

TOP = "analytics_top_revenue_by_currency"
DAILY = "analytics_revenue_trends_daily"


def top_rows(*rows) -> pa.Table:
    schema = pa.schema([("currency", pa.string()), ("total_revenue", pa.decimal128(20, 2)),
                        ("total_orders", pa.int64()), ("avg_order_value", pa.decimal128(20, 2)),
                        ("total_revenue_usd", pa.decimal128(20, 2))])
    return pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows], schema)


def daily_rows(*rows) -> pa.Table:
    schema = pa.schema([("period_start", pa.timestamp("us", "UTC")), ("currency", pa.string()),
                        ("total_revenue", pa.decimal128(20, 2)), ("order_count", pa.int64()),
                        ("total_revenue_usd", pa.decimal128(20, 2))])
    return pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows], schema)


@pytest.fixture
def url(pg_url):
    apply_schema(pg_url)
    return pg_url


def test_whole_table_replacement_and_nulls(url):
    replace(url, [Replacement(TOP, top_rows(("USD", D("1.00"), 1, D("1.00"), D("1.00")),
                                            ("EUR", D("2.00"), 1, D("2.00"), D("2.16"))))])
    written = replace(url, [Replacement(TOP, top_rows(("JPY", D("3.00"), 1, D("3.00"), None)))])
    assert written == {TOP: 1}
    assert table_rows(url, TOP) == {("JPY", D("3.00"), 1, D("3.00"), None)}
    replace(url, [Replacement(TOP, top_rows())])
    assert table_rows(url, TOP) == set()


def test_range_replacement_touches_only_the_range(url):
    day1, day2, day3 = ts("2026-11-23 00:00"), ts("2026-11-24 00:00"), ts("2026-11-25 00:00")
    replace(url, [Replacement(DAILY, daily_rows((day1, "USD", D("1.00"), 1, D("1.00")),
                                                (day2, "USD", D("2.00"), 2, D("2.00")),
                                                (day3, "USD", D("3.00"), 3, D("3.00"))))])
    replace(url, [Replacement.time_range(DAILY, daily_rows((day2, "EUR", D("9.00"), 9, D("9.72"))),
                                         "period_start", day2, day2 + timedelta(days=1))])
    assert table_rows(url, DAILY) == {(day1, "USD", D("1.00"), 1, D("1.00")), (day2, "EUR", D("9.00"), 9, D("9.72")),
                                      (day3, "USD", D("3.00"), 3, D("3.00"))}


def test_rows_outside_the_scope_abort_every_replacement_of_the_call(url):
    day = ts("2026-11-24 00:00")
    replace(url, [Replacement(TOP, top_rows(("USD", D("1.00"), 1, D("1.00"), D("1.00"))))])
    with pytest.raises(OutOfScope, match="1 of 1 rows for analytics_revenue_trends_daily"):
        replace(url, [Replacement(TOP, top_rows(("EUR", D("2.00"), 1, D("2.00"), D("2.16")))),
                      Replacement.time_range(DAILY, daily_rows((day + timedelta(days=1), "USD", D("1.00"), 1,
                                                                D("1.00"))), "period_start", day,
                                             day + timedelta(days=1))])
    assert table_rows(url, TOP) == {("USD", D("1.00"), 1, D("1.00"), D("1.00"))}
    assert table_rows(url, DAILY) == set()
