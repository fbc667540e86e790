"""The one Dagster entry point: `dg dev` (the `[tool.dg]` project) and workspace.yaml load `defs` from here."""

import dagster as dg

from eventflow_assets.orchestration.alerts import failure_alerts
from eventflow_assets.orchestration.analytics_assets import analytics_assets, global_analytics_job, revenue_trends_job
from eventflow_assets.orchestration.analytics_sensors import analytics_automation, finalized_windows
from eventflow_assets.orchestration.archive import orders_archive_job, orders_archive_schedule
from eventflow_assets.orchestration.catalog import catalogued
from eventflow_assets.orchestration.checks import sink_checks
from eventflow_assets.orchestration.database import postgres_observations, postgres_server
from eventflow_assets.orchestration.producer import producer_job
from eventflow_assets.orchestration.resources import EventFlowEndpoints, EventFlowPySpark
from eventflow_assets.orchestration.retention import retention_job, retention_schedule
from eventflow_assets.orchestration.schedules import sink_checks_job, sink_checks_schedule
from eventflow_assets.orchestration.sensors import streaming_supervisor, topic_observations
from eventflow_assets.orchestration.stream_assets import sink_table_materializations
from eventflow_assets.orchestration.streaming import streaming_job
from eventflow_assets.orchestration.table_assets import currency_rates, table_assets
from eventflow_assets.orchestration.topic_assets import topic_assets
from eventflow_assets.processing.spark import STREAM_APP, stream_jvm_conf

defs = dg.Definitions(
    # owners, layer tags
    assets=catalogued([*topic_assets, *table_assets, currency_rates, postgres_server, *analytics_assets]),
    asset_checks=sink_checks,
    jobs=[streaming_job, producer_job, sink_checks_job, revenue_trends_job, global_analytics_job, retention_job,
          orders_archive_job],
    sensors=[streaming_supervisor, topic_observations, sink_table_materializations, finalized_windows,
             analytics_automation, failure_alerts, postgres_observations],
    schedules=[sink_checks_schedule, retention_schedule, orders_archive_schedule],
    # Each setting whose EVENTFLOW_* variable is set is bound to it (shown by name, read at run time);
    # the others keep their defaults (the local stack). "pyspark" is streaming_job's session.
    resources={"eventflow": EventFlowEndpoints.from_env(),
               "pyspark": EventFlowPySpark.from_env(STREAM_APP, stream_jvm_conf()),
               # The analytics assets spark-submit jobs/batch_analytics_app.py through Dagster Pipes.
               "pipes_subprocess_client": dg.PipesSubprocessClient()},
)
