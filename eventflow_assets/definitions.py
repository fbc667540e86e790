"""The one Dagster entry point: `dg dev` (the `[tool.dg]` project) and workspace.yaml load `defs` from here."""

import dagster as dg

from eventflow_assets.orchestration.alerts import failure_alerts
from eventflow_assets.orchestration.analytics_assets import analytics_assets, global_analytics_job, revenue_trends_job
from eventflow_assets.orchestration.analytics_sensors import finalized_windows, global_analytics_refresh
from eventflow_assets.orchestration.checks import sink_checks
from eventflow_assets.orchestration.producer import producer_job
from eventflow_assets.orchestration.resources import EventFlowEndpoints, EventFlowPySpark, spark_config
from eventflow_assets.orchestration.retention import retention_job, retention_schedule
from eventflow_assets.orchestration.schedules import (global_analytics_schedule, sink_checks_job,
                                                      sink_checks_schedule)
from eventflow_assets.orchestration.sensors import streaming_supervisor, topic_observations
from eventflow_assets.orchestration.stream_assets import sink_table_materializations
from eventflow_assets.orchestration.streaming import streaming_job
from eventflow_assets.orchestration.table_assets import currency_rates, table_assets
from eventflow_assets.orchestration.topic_assets import topic_assets

defs = dg.Definitions(
    assets=[*topic_assets, *table_assets, currency_rates, *analytics_assets],
    asset_checks=sink_checks,
    jobs=[streaming_job, producer_job, sink_checks_job, revenue_trends_job, global_analytics_job, retention_job],
    sensors=[streaming_supervisor, topic_observations, sink_table_materializations, finalized_windows,
             global_analytics_refresh, failure_alerts],
    schedules=[sink_checks_schedule, global_analytics_schedule, retention_schedule],
    # streaming_job binds its own session, named eventflow-streaming (orchestration/streaming.py).
    resources={"eventflow": EventFlowEndpoints(),
               "pyspark": EventFlowPySpark(spark_config=spark_config("eventflow-analytics"))},
)
