"""The four analyses as assets downstream of the sink tables (lineage: topics -> sink tables -> analytics).

- ``revenue_trends`` (four tables) is partitioned by UTC day. A partition's run rewrites the
  day's windows that are final (the orders watermark is past their end), and the hours and the
  day that contain them, recomputed whole from ``revenue_by_currency_5min`` (so a rollup is
  complete once the last window of its period is final). ``finalized_windows`` requests the day
  each time one of its windows becomes final; a backfill of any range of days runs as ONE run.
- The global analyses (top revenue, conversion, segments) cover all the data and are not
  partitioned; their automation condition (orchestration/automation.py) keeps them current.

Every step runs ``spark-submit jobs/batch_analytics_app.py --analysis <its analysis>`` (plus the
partitions' window range) through Dagster Pipes: the application computes in Spark (JDBC reads),
replaces its rows in one transaction per analysis, so a retried or repeated run leaves the same
rows, and reports each table's materialization with its metadata (analytics/metadata.py). The
same command runs on any Spark master (EVENTFLOW_SPARK_MASTER), its driver on this machine.
"""

from datetime import datetime, timezone

import dagster as dg

from eventflow_assets.analytics.app import APP_NAME
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
from eventflow_assets.ingestion.events import ORDERS, WINDOW_LABEL
from eventflow_assets.orchestration.assets.tables import CURRENCY_RATES, table_key, table_metadata
from eventflow_assets.orchestration.automation import GLOBAL_FRESHNESS, TRENDS_FRESHNESS, global_refresh
from eventflow_assets.orchestration.catalog import ANALYTICS
from eventflow_assets.orchestration.probes import latest_watermark
from eventflow_assets.orchestration.resources import EventFlowEndpoints
from eventflow_assets.orchestration.windows import final_span, trend_days
from eventflow_assets.processing.submit import submit_command
from eventflow_assets.settings import POSTGRES_READ_VAR, POSTGRES_VAR
from eventflow_assets.storage.tables import FUNNEL, ORDERS_RAW, REVENUE

# At most one analytics run at a time, however launched (sensor, schedule, UI materialize or
# backfill): each starts a Spark JVM next to the stream's on a small machine. Every analytics
# asset is in this pool, which local/dagster_instance.py limits to one run.
SPARK_POOL = "eventflow_spark_batch"

APP_SCRIPT = "batch_analytics_app.py"


def _spec(table: str, deps: list, about: str, partitions_def=None, automation_condition=None,
          freshness_policy=GLOBAL_FRESHNESS) -> dg.AssetSpec:
    return dg.AssetSpec(table_key(table), deps=deps, group_name=ANALYTICS, kinds={"spark", "postgres"},
                        description=f"PostgreSQL table `{table}`. {about}", partitions_def=partitions_def,
                        metadata=table_metadata(table), automation_condition=automation_condition,
                        freshness_policy=freshness_policy)


def _run(context: dg.AssetExecutionContext, eventflow: EventFlowEndpoints, pipes: dg.PipesSubprocessClient,
         analysis: str, window_range=None) -> dg.PipesClientCompletedInvocation:
    """The application for one analysis, on the database of ``eventflow``; a failure fails the step
    with the application's own error."""
    args = ["--analysis", analysis]
    if window_range:
        args += ["--trends-from", window_range[0].isoformat(), "--trends-to", window_range[1].isoformat()]
    command = submit_command(APP_SCRIPT, args, APP_NAME)
    context.log.info(f"{analysis}: spark-submit --master {command[command.index('--master') + 1]} "
                     f"jobs/{APP_SCRIPT} {' '.join(args)}")
    try:
        return pipes.run(context=context, command=command, env=_database_env(eventflow))
    except Exception as exc:  # Pipes says only "External execution process failed with code N"
        error = _app_error(context)
        if error is None:
            raise
        raise dg.Failure(description=f"{analysis}: {error}") from exc


def _database_env(eventflow: EventFlowEndpoints) -> dict[str, str]:
    """The database the application writes and, when one is set, the replica it reads: in its
    environment, never on its command line (the URLs may hold passwords)."""
    env = {POSTGRES_VAR: eventflow.endpoints().postgres_url}
    read_url = eventflow.settings().postgres_read_url
    if read_url:
        env[POSTGRES_READ_VAR] = read_url
    return env


def _app_error(context: dg.AssetExecutionContext) -> str | None:
    """The error the application reported through Pipes as it exited (an engine event of this step),
    without its exception's class name."""
    step = context.op_execution_context.get_step_execution_context().step.key
    for record in reversed(context.instance.all_logs(context.run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)):
        event = record.dagster_event
        error = event.engine_event_data.error if event and event.step_key == step else None
        if error is not None:
            text = error.message.strip()
            name, sep, message = text.partition(": ")
            return message if sep and name.split(".")[-1] == error.cls_name else text
    return None


def _utc(ts) -> datetime:
    return datetime.fromtimestamp(ts.timestamp(), tz=timezone.utc)


_RATES = table_key(CURRENCY_RATES)
_REVENUE = table_key(REVENUE)
_FIVE_MIN, _HOURLY, _DAILY, _USD = (TRENDS_TABLES[k] for k in ("five_min", "hourly", "daily", "usd"))

TREND_SPECS = [
    _spec(_FIVE_MIN, [_REVENUE, _RATES], f"Revenue and orders per {WINDOW_LABEL} window and currency, with the USD "
          "value; final windows only. Partition = UTC day, materialized each time one of its windows becomes "
          "final.", trend_days, freshness_policy=TRENDS_FRESHNESS),
    _spec(_HOURLY, [_REVENUE, _RATES], "Hourly rollup per currency (UTC hours), recomputed whole for the hours "
          "of the windows materialized: complete once the hour's last window is final.", trend_days,
          freshness_policy=TRENDS_FRESHNESS),
    _spec(_DAILY, [_REVENUE, _RATES], "Daily rollup per currency (UTC days), recomputed whole for the day of "
          "the windows materialized.", trend_days, freshness_policy=TRENDS_FRESHNESS),
    _spec(_USD, [_REVENUE, _RATES], f"All currencies in USD per {WINDOW_LABEL} window, hour and day "
          "(granularity column).", trend_days, freshness_policy=TRENDS_FRESHNESS),
]


def _final_windows(context: dg.AssetExecutionContext, eventflow: EventFlowEndpoints) -> tuple[datetime, datetime]:
    """[start, end) of the windows of the run's days that are final now (the orders watermark is past them).

    None final yet (a day backfilled before its first window is final, a stream reset): the run
    fails without retries, saying so, rather than write windows that can still change.
    """
    days = context.partition_time_window
    start, end = _utc(days.start), _utc(days.end)
    watermark = latest_watermark(eventflow.endpoints().postgres_url, ORDERS)
    span = final_span(start, end, watermark)
    if span is None:
        raise dg.Failure(allow_retries=False, description=(
            f"no {WINDOW_LABEL} window from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC is final yet: the orders "
            f"query's watermark is {f'{watermark:%Y-%m-%d %H:%M:%S} UTC' if watermark else 'not set (no order streamed)'}"))
    return span


@dg.multi_asset(name="revenue_trends", specs=TREND_SPECS, backfill_policy=dg.BackfillPolicy.single_run(),
                pool=SPARK_POOL)
def revenue_trends(context: dg.AssetExecutionContext, eventflow: EventFlowEndpoints,
                   pipes_subprocess_client: dg.PipesSubprocessClient):
    # The final windows of the partitions' days: one day, or a whole backlog or backfill in this one run.
    yield from _run(context, eventflow, pipes_subprocess_client, TRENDS,
                    _final_windows(context, eventflow)).get_results()


@dg.asset(key=table_key(TOP_REVENUE_TABLE), deps=[_REVENUE, _RATES], group_name=ANALYTICS, pool=SPARK_POOL,
          kinds={"spark", "postgres"}, metadata=table_metadata(TOP_REVENUE_TABLE),
          automation_condition=global_refresh(), freshness_policy=GLOBAL_FRESHNESS,
          description=f"PostgreSQL table `{TOP_REVENUE_TABLE}`: total revenue, orders and the true average "
                      "order value (total / orders) per currency over all windows, not the mean of the windows' "
                      "averages, which would weigh a 1-order window like a 1,000-order one.")
def top_revenue_by_currency(context: dg.AssetExecutionContext, eventflow: EventFlowEndpoints,
                            pipes_subprocess_client: dg.PipesSubprocessClient) -> dg.MaterializeResult:
    return _run(context, eventflow, pipes_subprocess_client, TOP_REVENUE).get_materialize_result()


@dg.asset(key=table_key(CONVERSION_TABLE), deps=[table_key(FUNNEL)], group_name=ANALYTICS, pool=SPARK_POOL,
          kinds={"spark", "postgres"}, metadata=table_metadata(CONVERSION_TABLE),
          automation_condition=global_refresh(), freshness_policy=GLOBAL_FRESHNESS,
          description=f"PostgreSQL table `{CONVERSION_TABLE}`: per user over all windows, orders / views x 100 "
                      "(NULL when the user has no views).")
def conversion_rates(context: dg.AssetExecutionContext, eventflow: EventFlowEndpoints,
                     pipes_subprocess_client: dg.PipesSubprocessClient) -> dg.MaterializeResult:
    return _run(context, eventflow, pipes_subprocess_client, CONVERSION).get_materialize_result()


@dg.multi_asset(name="user_segments", pool=SPARK_POOL, specs=[
    _spec(SEGMENTS_TABLE, [table_key(ORDERS_RAW), _RATES], "Per user: total spend in USD over orders_raw, order "
          "count and segment: VIP > 1000 USD, Premium > 500 USD, New with exactly one order, else Regular.",
          automation_condition=global_refresh()),
    _spec(SUMMARY_TABLE, [table_key(SEGMENTS_TABLE)], "Per segment (all four, even empty): users, revenue in "
          "USD, average spend, orders.", automation_condition=global_refresh()),
])
def user_segments(context: dg.AssetExecutionContext, eventflow: EventFlowEndpoints,
                  pipes_subprocess_client: dg.PipesSubprocessClient):
    yield from _run(context, eventflow, pipes_subprocess_client, SEGMENTS).get_results()


analytics_assets = [revenue_trends, top_revenue_by_currency, conversion_rates, user_segments]
TREND_KEYS = [spec.key for spec in TREND_SPECS]
GLOBAL_KEYS = [table_key(t) for t in (TOP_REVENUE_TABLE, CONVERSION_TABLE, SEGMENTS_TABLE, SUMMARY_TABLE)]
