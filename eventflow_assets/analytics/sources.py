"""The analyses' inputs: the streaming tables and the currency rates, as lazy JDBC DataFrames
(each read happens when an action needs it)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from psycopg import sql
from pyspark.sql import DataFrame, SparkSession

from eventflow_assets.analytics.jdbc import Partitioning, jdbc_target, read
from eventflow_assets.periods import DAY, ceil_to, floor_to
from eventflow_assets.storage.postgres import connect
from eventflow_assets.storage.tables import CURRENCY_RATES, FUNNEL, ORDERS_RAW, REVENUE

# Below this many rows (PostgreSQL's estimate) one JDBC connection reads faster than several.
PARALLEL_READ_ROWS = 200_000


def check_range(window_range: tuple[datetime, datetime]) -> tuple[datetime, datetime]:
    start, end = window_range
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("window_range needs timezone-aware datetimes")
    if not start < end:
        raise ValueError(f"empty window_range [{start}, {end})")
    return start, end


def revenue_5min(spark: SparkSession, postgres_url: str,
                 window_range: tuple[datetime, datetime] | None = None) -> DataFrame:
    """With ``window_range``, only the windows of the whole UTC days around it: enough for the
    hourly and daily rollups of the periods the range touches to be complete."""
    query = _select(REVENUE, "window_start", "window_end", "currency", "total_revenue", "order_count")
    if window_range is not None:
        start, end = check_range(window_range)
        query += (f" WHERE window_start >= '{floor_to(start, DAY).isoformat()}'::timestamptz"
                  f" AND window_start < '{ceil_to(end, DAY).isoformat()}'::timestamptz")
    return read(spark, jdbc_target(postgres_url), query=query)


def funnel_5min(spark: SparkSession, postgres_url: str) -> DataFrame:
    return read(spark, jdbc_target(postgres_url),
                query=_select(FUNNEL, "window_start", "user_id", "view_count", "order_count"),
                partitioning=_partitioning(spark, postgres_url, FUNNEL, "window_start"))


def orders_raw(spark: SparkSession, postgres_url: str) -> DataFrame:
    return read(spark, jdbc_target(postgres_url), query=_select(ORDERS_RAW, "user_id", "price", "currency", "timestamp"),
                partitioning=_partitioning(spark, postgres_url, ORDERS_RAW, "timestamp"))


def currency_rates(spark: SparkSession, postgres_url: str) -> DataFrame:
    return read(spark, jdbc_target(postgres_url), query=_select(CURRENCY_RATES, "currency", "usd_rate"))


def _select(table: str, *columns: str) -> str:
    """``SELECT <columns> FROM <table>``, the names quoted as identifiers: a query for Spark's JDBC source."""
    return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(map(sql.Identifier, columns)),
                                                sql.Identifier(table)).as_string()


def _partitioning(spark: SparkSession, postgres_url: str, table: str, column: str) -> Partitioning | None:
    """Split a large table's read into time ranges, one per core; None for a small table.

    Bounds only size the ranges (the first and last are open-ended), so rows outside them, or
    written after this look, are still read.
    """
    with connect(postgres_url) as conn:
        # Summed over the leaves: a partitioned table's own reltuples is not kept up to date.
        estimate = conn.execute("SELECT coalesce(sum(greatest(c.reltuples, 0)), 0) FROM pg_partition_tree(%s::regclass) p "
                                "JOIN pg_class c ON c.oid = p.relid WHERE p.isleaf", (table,)).fetchone()[0]
        if estimate < PARALLEL_READ_ROWS:
            return None
        lower, upper = conn.execute(sql.SQL("SELECT min({c}), max({c}) FROM {t}").format(
            c=sql.Identifier(column), t=sql.Identifier(table))).fetchone()
    if lower is None or lower == upper:
        return None
    fmt = "%Y-%m-%d %H:%M:%S"
    return Partitioning(column, lower.astimezone(timezone.utc).strftime(fmt),
                        ceil_to(upper, timedelta(seconds=1)).astimezone(timezone.utc).strftime(fmt),
                        spark.sparkContext.defaultParallelism)
