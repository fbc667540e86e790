"""The four analyses as assets downstream of the sink tables (lineage: topics -> sink tables -> analytics).

- ``revenue_trends`` (four tables) is partitioned by 5-minute window. A partition's run rewrites
  that window's rows, and the hours and days that contain it, recomputed whole from
  ``revenue_by_currency_5min`` (so a rollup is complete once the last window of its period is
  final). ``finalized_windows`` requests each window once it is final; a backfill of any range
  runs as ONE run (one SparkSession) for the whole range.
- The global analyses (top revenue, conversion, segments) cover all the data and are not
  partitioned; ``global_analytics_refresh`` and ``global_analytics_schedule`` keep them current.

Every run computes in Spark (JDBC reads) through :func:`run_analyses` and replaces its rows in
one transaction per analysis, so a retried or repeated run leaves the same rows.
"""

from datetime import datetime, timezone

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from eventflow_assets.analytics.run import (CONVERSION, SEGMENTS, TOP_REVENUE, TRENDS, TRENDS_TABLES,
                                            AnalysisResult, run_analyses)
from eventflow_assets.analytics.transforms import SEGMENTS as SEGMENT_NAMES
from eventflow_assets.orchestration.groups import ANALYTICS
from eventflow_assets.orchestration.metadata import count, preview, total
from eventflow_assets.orchestration.resources import EventFlowEndpoints, EventFlowPySpark
from eventflow_assets.orchestration.table_assets import CURRENCY_RATES, table_key, table_metadata
from eventflow_assets.orchestration.windows import WINDOW, five_minute_windows
from eventflow_assets.storage.tables import FUNNEL, ORDERS_RAW, REVENUE

# At most one analytics run at a time, however launched (sensor, schedule, UI materialize or
# backfill): each starts a Spark JVM next to the stream's on a small machine. Every analytics
# asset is in this pool, which instance.py limits to one run. The jobs' runs are retried twice
# when they fail (run_retries); runs launched from the UI are not.
SPARK_POOL = "eventflow_spark_batch"
JOB_TAGS = {"dagster/max_retries": "2"}
TRENDS_JOB = "revenue_trends_job"
GLOBAL_JOB = "global_analytics_job"

TOP_REVENUE_TABLE = "analytics_top_revenue_by_currency"
CONVERSION_TABLE = "analytics_conversion_rates"
SEGMENTS_TABLE = "analytics_user_segments"
SUMMARY_TABLE = "analytics_segment_summary"


def _spec(table: str, deps: list, about: str, partitions_def=None) -> dg.AssetSpec:
    return dg.AssetSpec(table_key(table), deps=deps, group_name=ANALYTICS, kinds={"spark", "postgres"},
                        description=f"PostgreSQL table `{table}`. {about}", partitions_def=partitions_def,
                        metadata=table_metadata(table))


def _run(context: dg.AssetExecutionContext, eventflow: EventFlowEndpoints, pyspark: EventFlowPySpark,
         analysis: str, window_range=None) -> AnalysisResult:
    url = eventflow.endpoints().postgres_url
    context.log.info(f"{analysis}: reading the streaming tables through JDBC"
                     + (f" for windows [{window_range[0]}, {window_range[1]})" if window_range else ""))
    result = run_analyses(pyspark.spark_session, url, window_range, analyses=(analysis,))[analysis]
    for warning in result.warnings:
        context.log.warning(f"{analysis}: {warning}")
    context.log.info(f"{analysis}: rows written {result.written} in {result.seconds:.1f}s")
    return result


def _utc(ts) -> datetime:
    return datetime.fromtimestamp(ts.timestamp(), tz=timezone.utc)


def _money_metadata(rows: pa.Table, sort_by: list, orders: str, usd: str, prefix: str = "") -> dict:
    return {"dagster/row_count": rows.num_rows, f"{prefix}orders": count(rows, orders),
            f"{prefix}revenue_usd": total(rows, usd), "preview": preview(rows, sort_by)}


_RATES = table_key(CURRENCY_RATES)
_REVENUE = table_key(REVENUE)
_FIVE_MIN, _HOURLY, _DAILY, _USD = (TRENDS_TABLES[k] for k in ("five_min", "hourly", "daily", "usd"))

TREND_SPECS = [
    _spec(_FIVE_MIN, [_REVENUE, _RATES], "Revenue and orders per 5-minute window and currency, with the USD "
          "value. Partition = window; materialized once the window is final.", five_minute_windows),
    _spec(_HOURLY, [_REVENUE, _RATES], "Hourly rollup per currency (UTC hours), recomputed whole for the hour "
          "of each window materialized: complete once the hour's last window is final.", five_minute_windows),
    _spec(_DAILY, [_REVENUE, _RATES], "Daily rollup per currency (UTC days), recomputed whole for the day of "
          "each window materialized.", five_minute_windows),
    _spec(_USD, [_REVENUE, _RATES], "All currencies in USD per 5-minute window, hour and day "
          "(granularity column).", five_minute_windows),
]


@dg.multi_asset(name="revenue_trends", specs=TREND_SPECS, backfill_policy=dg.BackfillPolicy.single_run(),
                pool=SPARK_POOL)
def revenue_trends(context: dg.AssetExecutionContext, eventflow: EventFlowEndpoints, pyspark: EventFlowPySpark):
    window = context.partition_time_window
    start, end = _utc(window.start), _utc(window.end)
    tables = _run(context, eventflow, pyspark, TRENDS, (start, end)).tables
    windows = (end - start) // WINDOW
    span = {"window_start": start.isoformat(), "window_end": end.isoformat(), "windows": windows}
    # A ranged run (backlog, backfill) records the same metadata on every partition it covers:
    # its totals are named range_* so a per-window plot of orders / revenue_usd never shows them.
    prefix = "" if windows == 1 else "range_"
    five = tables[_FIVE_MIN]
    yield dg.MaterializeResult(asset_key=table_key(_FIVE_MIN), metadata={
        **span, **_money_metadata(five, [("window_start", "ascending"), ("currency", "ascending")],
                                  "order_count", "total_revenue_usd", prefix),
        "currencies": len(set(five["currency"].to_pylist()))})
    for table in (_HOURLY, _DAILY):
        yield dg.MaterializeResult(asset_key=table_key(table), metadata={
            **span, **_money_metadata(tables[table], [("period_start", "ascending"), ("currency", "ascending")],
                                      "order_count", "total_revenue_usd", "period_")})
    usd = tables[_USD]
    five_usd = usd.filter(pc.equal(usd["granularity"], "5min"))
    yield dg.MaterializeResult(asset_key=table_key(_USD), metadata={
        **span, "dagster/row_count": usd.num_rows, f"{prefix}orders": count(five_usd, "order_count"),
        f"{prefix}revenue_usd": total(five_usd, "total_revenue_usd"),
        "preview": preview(usd, [("granularity", "ascending"), ("period_start", "ascending")])})


@dg.asset(key=table_key(TOP_REVENUE_TABLE), deps=[_REVENUE, _RATES], group_name=ANALYTICS, pool=SPARK_POOL,
          kinds={"spark", "postgres"}, metadata=table_metadata(TOP_REVENUE_TABLE),
          description=f"PostgreSQL table `{TOP_REVENUE_TABLE}`: total revenue, orders and the true average "
                      "order value (total / orders) per currency over all windows. The seed averaged the "
                      "windows' averages, which weighs a 1-order window like a 1,000-order one.")
def top_revenue_by_currency(context: dg.AssetExecutionContext, eventflow: EventFlowEndpoints,
                            pyspark: EventFlowPySpark) -> dg.MaterializeResult:
    rows = _run(context, eventflow, pyspark, TOP_REVENUE).tables[TOP_REVENUE_TABLE]
    return dg.MaterializeResult(metadata={
        **_money_metadata(rows, [("total_revenue_usd", "descending"), ("currency", "ascending")],
                          "total_orders", "total_revenue_usd"),
        "currencies": rows.num_rows})


@dg.asset(key=table_key(CONVERSION_TABLE), deps=[table_key(FUNNEL)], group_name=ANALYTICS, pool=SPARK_POOL,
          kinds={"spark", "postgres"}, metadata=table_metadata(CONVERSION_TABLE),
          description=f"PostgreSQL table `{CONVERSION_TABLE}`: per user over all windows, orders / views x 100 "
                      "(NULL when the user has no views).")
def conversion_rates(context: dg.AssetExecutionContext, eventflow: EventFlowEndpoints,
                     pyspark: EventFlowPySpark) -> dg.MaterializeResult:
    rows = _run(context, eventflow, pyspark, CONVERSION).tables[CONVERSION_TABLE]
    viewed = rows.filter(pc.greater(rows["view_count"], 0))
    views, orders = count(viewed, "view_count"), count(viewed, "order_count")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows.num_rows, "users": rows.num_rows, "users_with_views": viewed.num_rows,
        # Orders per 100 views over every user with views: the platform-wide conversion.
        "conversion_pct": round(orders * 100 / views, 2) if views else 0.0,
        "preview": preview(rows, [("conversion_rate", "descending"), ("view_count", "descending"),
                                  ("user_id", "ascending")])})


@dg.multi_asset(name="user_segments", pool=SPARK_POOL, specs=[
    _spec(SEGMENTS_TABLE, [table_key(ORDERS_RAW), _RATES], "Per user: total spend in USD over orders_raw, order "
          "count and segment: VIP > 1000 USD, Premium > 500 USD, New with exactly one order, else Regular."),
    _spec(SUMMARY_TABLE, [table_key(SEGMENTS_TABLE)], "Per segment (all four, even empty): users, revenue in "
          "USD, average spend, orders."),
])
def user_segments(context: dg.AssetExecutionContext, eventflow: EventFlowEndpoints, pyspark: EventFlowPySpark):
    tables = _run(context, eventflow, pyspark, SEGMENTS).tables
    users, summary = tables[SEGMENTS_TABLE], tables[SUMMARY_TABLE]
    yield dg.MaterializeResult(asset_key=table_key(SEGMENTS_TABLE), metadata={
        "dagster/row_count": users.num_rows, "users": users.num_rows,
        "preview": preview(users, [("total_spend_usd", "descending"), ("user_id", "ascending")])})
    by_segment = {row["segment"]: row for row in summary.to_pylist()}
    sizes = {}
    for name in SEGMENT_NAMES:
        row = by_segment.get(name) or {"users": 0, "revenue_usd": 0}
        sizes[f"{name.lower()}_users"] = int(row["users"])
        sizes[f"{name.lower()}_revenue_usd"] = float(row["revenue_usd"])
    yield dg.MaterializeResult(asset_key=table_key(SUMMARY_TABLE), metadata={
        "dagster/row_count": summary.num_rows, **sizes,
        "preview": preview(summary, [("revenue_usd", "descending"), ("segment", "ascending")])})


analytics_assets = [revenue_trends, top_revenue_by_currency, conversion_rates, user_segments]
TREND_KEYS = [spec.key for spec in TREND_SPECS]
GLOBAL_KEYS = [table_key(t) for t in (TOP_REVENUE_TABLE, CONVERSION_TABLE, SEGMENTS_TABLE, SUMMARY_TABLE)]

revenue_trends_job = dg.define_asset_job(
    TRENDS_JOB, selection=dg.AssetSelection.assets(*TREND_KEYS),
    executor_def=dg.in_process_executor, tags=JOB_TAGS,
    description="The revenue trends of one 5-minute window (or a range, as one run): requested by the "
                "finalized_windows sensor once the window is final.")

global_analytics_job = dg.define_asset_job(
    GLOBAL_JOB, selection=dg.AssetSelection.assets(*GLOBAL_KEYS), executor_def=dg.in_process_executor,
    tags=JOB_TAGS, description="Top revenue by currency, conversion rates and user segments over all data, "
                               "in one run and one SparkSession.")
