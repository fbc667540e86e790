"""What each analytics table's materialization says: row counts, totals to plot, a preview.

Computed by the Spark application from the Arrow tables it wrote, and sent to Dagster through
Pipes in Pipes' typed form (``{"type": ..., "raw_value": ...}``, plain JSON), so the driver needs
dagster-pipes only, not Dagster.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from eventflow_assets.analytics.names import (
    CONVERSION,
    CONVERSION_TABLE,
    SEGMENTS,
    SEGMENTS_TABLE,
    SUMMARY_TABLE,
    TOP_REVENUE,
    TOP_REVENUE_TABLE,
    TRENDS,
    TRENDS_TABLES,
)
from eventflow_assets.analytics.transforms import SEGMENTS as SEGMENT_NAMES
from eventflow_assets.ingestion.events import WINDOW

PREVIEW_ROWS = 20
ROW_COUNT = "dagster/row_count"  # the key Dagster's UI shows as the table's row count
_TYPES = {"string": "string", "int64": "int", "bool": "bool"}
_FIVE_MIN, _HOURLY, _DAILY, _USD = (TRENDS_TABLES[k] for k in ("five_min", "hourly", "daily", "usd"))


def _typed(kind: str, value) -> dict:
    return {"type": kind, "raw_value": value}


def _int(value) -> dict:
    return _typed("int", int(value))


def _float(value) -> dict:
    return _typed("float", float(value))


def _cell(value):
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value


def _column_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_decimal(arrow_type) or pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    return _TYPES.get(str(arrow_type), "string")


def preview(rows: pa.Table, sort_by: list[tuple[str, str]], limit: int = PREVIEW_ROWS) -> dict:
    """The first ``limit`` rows of ``rows`` in ``sort_by`` order (pyarrow sort keys), as a table value."""
    head = rows.sort_by(sort_by).slice(0, limit) if rows.num_rows else rows
    return _typed("table", {
        "records": [{k: _cell(v) for k, v in row.items()} for row in head.to_pylist()],
        "schema": [{"name": f.name, "type": _column_type(f.type)} for f in rows.schema]})


def total(rows: pa.Table, column: str) -> float:
    """Sum of a column as a float for plots (0.0 when empty or all NULL)."""
    value = pc.sum(rows[column]).as_py() if rows.num_rows else None
    return float(value) if value is not None else 0.0


def count(rows: pa.Table, column: str) -> int:
    value = pc.sum(rows[column]).as_py() if rows.num_rows else None
    return int(value or 0)


def _money(rows: pa.Table, sort_by: list, orders: str, usd: str, prefix: str = "") -> dict:
    return {ROW_COUNT: _int(rows.num_rows), f"{prefix}orders": _int(count(rows, orders)),
            f"{prefix}revenue_usd": _float(total(rows, usd)), "preview": preview(rows, sort_by)}


def _trends(tables: dict[str, pa.Table], window_range) -> dict[str, dict]:
    span, prefix = {}, "range_"
    if window_range is not None:
        start, end = window_range
        windows = (end - start) // WINDOW
        span = {"window_start": _typed("text", start.isoformat()), "window_end": _typed("text", end.isoformat()),
                "windows": _int(windows)}
        # A run of one day (one partition) totals that day's final windows; a run over several days
        # (backlog, backfill) records the same metadata on every day it covers: its totals are named
        # range_* so a per-day plot of orders / revenue_usd never shows them.
        prefix = "" if start.date() == (end - WINDOW).date() else "range_"
    five, usd = tables[_FIVE_MIN], tables[_USD]
    five_usd = usd.filter(pc.equal(usd["granularity"], "5min"))
    periods = [("period_start", "ascending"), ("currency", "ascending")]
    return {
        _FIVE_MIN: {**span, **_money(five, [("window_start", "ascending"), ("currency", "ascending")],
                                     "order_count", "total_revenue_usd", prefix),
                    "currencies": _int(len(set(five["currency"].to_pylist())))},
        _HOURLY: {**span, **_money(tables[_HOURLY], periods, "order_count", "total_revenue_usd", "period_")},
        _DAILY: {**span, **_money(tables[_DAILY], periods, "order_count", "total_revenue_usd", "period_")},
        _USD: {**span, ROW_COUNT: _int(usd.num_rows), f"{prefix}orders": _int(count(five_usd, "order_count")),
               f"{prefix}revenue_usd": _float(total(five_usd, "total_revenue_usd")),
               "preview": preview(usd, [("granularity", "ascending"), ("period_start", "ascending")])},
    }


def _top_revenue(tables: dict[str, pa.Table], _) -> dict[str, dict]:
    rows = tables[TOP_REVENUE_TABLE]
    return {TOP_REVENUE_TABLE: {
        **_money(rows, [("total_revenue_usd", "descending"), ("currency", "ascending")], "total_orders",
                 "total_revenue_usd"),
        "currencies": _int(rows.num_rows)}}


def _conversion(tables: dict[str, pa.Table], _) -> dict[str, dict]:
    rows = tables[CONVERSION_TABLE]
    viewed = rows.filter(pc.greater(rows["view_count"], 0))
    views, orders = count(viewed, "view_count"), count(viewed, "order_count")
    return {CONVERSION_TABLE: {
        ROW_COUNT: _int(rows.num_rows), "users": _int(rows.num_rows), "users_with_views": _int(viewed.num_rows),
        # Orders per 100 views over every user with views: the platform-wide conversion.
        "conversion_pct": _float(round(orders * 100 / views, 2) if views else 0.0),
        "preview": preview(rows, [("conversion_rate", "descending"), ("view_count", "descending"),
                                  ("user_id", "ascending")])}}


def _segments(tables: dict[str, pa.Table], _) -> dict[str, dict]:
    users, summary = tables[SEGMENTS_TABLE], tables[SUMMARY_TABLE]
    by_segment = {row["segment"]: row for row in summary.to_pylist()}
    sizes = {}
    for name in SEGMENT_NAMES:
        row = by_segment.get(name) or {"users": 0, "revenue_usd": 0}
        sizes[f"{name.lower()}_users"] = _int(row["users"])
        sizes[f"{name.lower()}_revenue_usd"] = _float(row["revenue_usd"])
    return {
        SEGMENTS_TABLE: {ROW_COUNT: _int(users.num_rows), "users": _int(users.num_rows),
                         "preview": preview(users, [("total_spend_usd", "descending"), ("user_id", "ascending")])},
        SUMMARY_TABLE: {ROW_COUNT: _int(summary.num_rows), **sizes,
                        "preview": preview(summary, [("revenue_usd", "descending"), ("segment", "ascending")])},
    }


_BY_ANALYSIS = {TRENDS: _trends, TOP_REVENUE: _top_revenue, CONVERSION: _conversion, SEGMENTS: _segments}


def table_metadata(analysis: str, tables: dict[str, pa.Table], window_range=None) -> dict[str, dict]:
    """Output table -> its materialization metadata, for one analysis' result tables.
    ``window_range``: the [start, end) a trends run covered (None: every window)."""
    return _BY_ANALYSIS[analysis](tables, window_range)
