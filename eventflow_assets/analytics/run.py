"""Run the analyses end to end: read through JDBC, transform, collect, write. Used by
jobs/batch_analytics_app.py and the Dagster analytics assets.

Reads may go to a read replica (``read_url``), once it has caught up (analytics/replica.py);
writes always go to the primary.

Each analysis is collected once (``toArrow``); the same Arrow tables are written and printed.
Each analysis commits in its own transaction (segments with their summary, the four trends
tables together).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from eventflow_assets.analytics import sources, transforms
from eventflow_assets.analytics.names import (
    ANALYSES,
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
from eventflow_assets.analytics.replica import REPLICA_WAIT_SECONDS, wait_for_replica
from eventflow_assets.analytics.report import format_report
from eventflow_assets.analytics.sources import check_range
from eventflow_assets.analytics.writer import Replacement, replace
from eventflow_assets.periods import DAY, HOUR, ceil_to, floor_to
from eventflow_assets.settings import redact_url

__all__ = ["ANALYSES", "AnalysisResult", "format_report", "run_analyses"]

log = logging.getLogger("eventflow.analytics")

# (RevenueTrends field, time column, granularity in the USD table, period a ranged run rounds out to)
TREND_SERIES = (("five_min", "window_start", "5min", None), ("hourly", "period_start", "hour", HOUR),
                ("daily", "period_start", "day", DAY))


@dataclass
class AnalysisResult:
    """``tables``: output table name -> its rows (what was written); ``written``: rows inserted."""

    tables: dict[str, pa.Table]
    seconds: float = 0.0
    written: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def run_analyses(spark: SparkSession, postgres_url: str,
                 window_range: tuple[datetime, datetime] | None = None, *,
                 analyses: tuple[str, ...] = ANALYSES, write: bool = True, read_url: str | None = None,
                 replica_wait: float = REPLICA_WAIT_SECONDS) -> dict[str, AnalysisResult]:
    """Compute ``analyses`` and (unless ``write=False``) replace their tables in ``postgres_url``.

    The inputs are read from ``read_url`` when given (a replica of ``postgres_url``), after it has
    replayed what the primary held at the start, waiting at most ``replica_wait`` seconds.

    ``window_range`` = [start, end) limits the revenue trends to the windows starting in it, and
    to the hours and days those touch (recomputed whole); the other analyses are global and
    always cover everything.
    """
    unknown = set(analyses) - set(ANALYSES)
    if unknown:
        raise ValueError(f"unknown analyses {sorted(unknown)}; choose from {ANALYSES}")
    if window_range is not None:
        window_range = check_range(window_range)
    source = postgres_url
    if read_url is not None and read_url != postgres_url:
        wait_for_replica(postgres_url, read_url, replica_wait)
        log.info("reading from the replica %s", redact_url(read_url))
        source = read_url
    rates = sources.currency_rates(spark, source).cache()
    revenue = sources.revenue_5min(spark, source, window_range)
    if TOP_REVENUE in analyses and TRENDS in analyses:
        revenue = revenue.cache()
    steps = {TOP_REVENUE: lambda: _top_revenue(revenue, rates),
             CONVERSION: lambda: _conversion(sources.funnel_5min(spark, source)),
             TRENDS: lambda: _trends(revenue, rates, window_range),
             SEGMENTS: lambda: _segments(sources.orders_raw(spark, source), rates)}
    results = {}
    try:
        for name in (a for a in ANALYSES if a in analyses):
            started = time.monotonic()
            result, replacements = steps[name]()
            if write:
                result.written = replace(postgres_url, replacements)
            result.seconds = time.monotonic() - started
            for warning in result.warnings:
                log.warning("%s: %s", name, warning)
            log.info("%s: %s in %.1fs", name, result.written or "not written", result.seconds)
            results[name] = result
    finally:
        rates.unpersist()
        revenue.unpersist()
    return results


def _unrated(rows: pa.Table, usd_column: str) -> list[str]:
    missing = sorted(set(rows.filter(pc.is_null(rows[usd_column]))["currency"].to_pylist()))
    return [f"no rate in currency_rates for {', '.join(missing)}: left out of USD amounts"] if missing else []


def _top_revenue(revenue: DataFrame, rates: DataFrame) -> tuple[AnalysisResult, list[Replacement]]:
    rows = transforms.top_revenue_by_currency(revenue, rates).toArrow()
    table = TOP_REVENUE_TABLE
    return AnalysisResult({table: rows}, warnings=_unrated(rows, "total_revenue_usd")), [Replacement(table, rows)]


def _conversion(funnel: DataFrame) -> tuple[AnalysisResult, list[Replacement]]:
    rows = transforms.conversion_rates(funnel).toArrow()
    table = CONVERSION_TABLE
    return AnalysisResult({table: rows}), [Replacement(table, rows)]


def _segments(orders: DataFrame, rates: DataFrame) -> tuple[AnalysisResult, list[Replacement]]:
    segments = transforms.user_segments(orders, rates).cache()
    try:
        users = segments.toArrow()
        summary = transforms.segment_summary(segments).toArrow()
    finally:
        segments.unpersist()
    tables = {SEGMENTS_TABLE: users, SUMMARY_TABLE: summary}
    return AnalysisResult(tables), [Replacement(name, rows) for name, rows in tables.items()]


def _trends(revenue: DataFrame, rates: DataFrame, window_range) -> tuple[AnalysisResult, list[Replacement]]:
    """Full run: every row. Ranged run: per series, the windows, hours or days the range touches."""
    trends = transforms.revenue_trends(revenue, rates)
    tables, usd_parts, replacements = {}, [], []
    for part, column, granularity, step in TREND_SERIES:
        rows, usd = getattr(trends, part), trends.usd.where(F.col("granularity") == granularity)
        period = None
        if window_range is not None:
            start, end = window_range
            period = (start, end) if step is None else (floor_to(start, step), ceil_to(end, step))
            rows, usd = _within(rows, column, period), _within(usd, "period_start", period)
        rows, usd = rows.toArrow(), usd.toArrow()
        tables[TRENDS_TABLES[part]] = rows
        usd_parts.append(usd)
        replacements += [_replacement(TRENDS_TABLES[part], rows, column, period),
                         _replacement(TRENDS_TABLES["usd"], usd, "period_start", period,
                                      extra="granularity = %s", params=(granularity,))]
    tables[TRENDS_TABLES["usd"]] = pa.concat_tables(usd_parts)
    result = AnalysisResult(tables, warnings=_unrated(tables[TRENDS_TABLES["five_min"]], "total_revenue_usd"))
    return result, replacements


def _replacement(table: str, rows: pa.Table, column: str, period, extra: str = "TRUE",
                 params: tuple = ()) -> Replacement:
    if period is None:
        return Replacement(table, rows, extra, params)
    return Replacement.time_range(table, rows, column, *period, extra=extra, extra_params=params)


def _within(df: DataFrame, column: str, period: tuple[datetime, datetime]) -> DataFrame:
    return df.where((F.col(column) >= F.lit(period[0])) & (F.col(column) < F.lit(period[1])))
