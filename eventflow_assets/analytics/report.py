"""The analyses as console text: one titled section each."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pyarrow as pa

from eventflow_assets.analytics.names import (
    CONVERSION,
    CONVERSION_TABLE,
    SUMMARY_TABLE,
    TOP_REVENUE,
    TOP_REVENUE_TABLE,
    TRENDS,
    TRENDS_TABLES,
)
from eventflow_assets.analytics.names import SEGMENTS as SEGMENTS_ANALYSIS
from eventflow_assets.analytics.transforms import SEGMENTS
from eventflow_assets.ingestion.events import WINDOW_LABEL

TITLES = {TOP_REVENUE: "Top revenue by currency", CONVERSION: "Conversion rates", TRENDS: "Revenue trends",
          SEGMENTS_ANALYSIS: "User segments"}


def format_report(results: dict, top: int = 10, latest: int = 12) -> str:
    """``results`` from run_analyses; ``top`` users by conversion rate, ``latest`` periods per trend table."""
    sections = []
    for name, render in ((TOP_REVENUE, _top_revenue), (CONVERSION, _conversion), (TRENDS, _trends),
                         (SEGMENTS_ANALYSIS, _segments)):
        if name in results:
            result = results[name]
            body = render(result.tables, top=top, latest=latest)
            notes = "".join(f"warning: {w}\n" for w in result.warnings)
            sections.append(f"=== {TITLES[name]} ===\n{body}{notes}")
    return "\n".join(sections)


def _top_revenue(tables, **_) -> str:
    rows = _rows(tables[TOP_REVENUE_TABLE])
    rows.sort(key=lambda r: (-r["total_revenue"], r["currency"]))
    return _grid(["currency", "total_revenue", "orders", "avg_order_value", "total_revenue_usd"],
                 [[r["currency"], r["total_revenue"], r["total_orders"], r["avg_order_value"], r["total_revenue_usd"]]
                  for r in rows])


def _conversion(tables, top: int, **_) -> str:
    rows = _rows(tables[CONVERSION_TABLE])
    rated = sorted((r for r in rows if r["conversion_rate"] is not None),
                   key=lambda r: (-r["conversion_rate"], -r["view_count"], r["user_id"]))
    head = (f"{len(rows)} users, {len(rows) - len(rated)} with orders but no views (rate NULL); "
            f"top {min(top, len(rated))} by conversion rate:\n")
    return head + _grid(["user_id", "views", "orders", "conversion_rate_%"],
                        [[r["user_id"], r["view_count"], r["order_count"], r["conversion_rate"]] for r in rated[:top]])


def _trends(tables, latest: int, **_) -> str:
    windows = _rows(tables[TRENDS_TABLES["five_min"]])
    starts = sorted({r["window_start"] for r in windows})[-latest:]
    windows = sorted((r for r in windows if r["window_start"] in starts),
                     key=lambda r: (r["window_start"], r["currency"]))
    usd = _rows(tables[TRENDS_TABLES["usd"]])
    daily = sorted(_rows(tables[TRENDS_TABLES["daily"]]), key=lambda r: (r["period_start"], r["currency"]))
    out = [f"Latest {len(starts)} {WINDOW_LABEL} windows:\n" + _grid(
        ["window_start", "currency", "total_revenue", "orders", "total_revenue_usd"],
        [[r["window_start"], r["currency"], r["total_revenue"], r["order_count"], r["total_revenue_usd"]]
         for r in windows])]
    for granularity, label in (("hour", "Hourly"), ("day", "Daily")):
        periods = sorted((r for r in usd if r["granularity"] == granularity), key=lambda r: r["period_start"])
        out.append(f"{label}, all currencies in USD (latest {min(latest, len(periods))}):\n" + _grid(
            ["period_start", "orders", "total_revenue_usd"],
            [[r["period_start"], r["order_count"], r["total_revenue_usd"]] for r in periods[-latest:]]))
    days = sorted({r["period_start"] for r in daily})[-latest:]
    out.append("Daily by currency:\n" + _grid(
        ["day", "currency", "total_revenue", "orders", "total_revenue_usd"],
        [[r["period_start"].date(), r["currency"], r["total_revenue"], r["order_count"], r["total_revenue_usd"]]
         for r in daily if r["period_start"] in days]))
    return "\n".join(out)


def _segments(tables, **_) -> str:
    summary = {r["segment"]: r for r in _rows(tables[SUMMARY_TABLE])}
    return _grid(["segment", "users", "orders", "revenue_usd", "avg_spend_usd"],
                 [[s, summary[s]["users"], summary[s]["orders"], summary[s]["revenue_usd"], summary[s]["avg_spend_usd"]]
                  for s in SEGMENTS if s in summary])


def _rows(table: pa.Table) -> list[dict]:
    return table.to_pylist()


def _cell(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def _grid(headers: list[str], rows: list[list]) -> str:
    """A plain-text table; numbers right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    numeric = [bool(rows) and all(isinstance(row[i], (int, Decimal)) or row[i] is None for row in rows)
               for i in range(len(headers))]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)).rstrip()

    body = [line(headers), line(["-" * w for w in widths])] + [line(row) for row in cells]
    if not rows:
        body.append("(no rows)")
    return "\n".join(body) + "\n"
