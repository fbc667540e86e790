"""The one Dagster entry point: `dg dev` (the `[tool.dg]` project) and workspace.yaml load `defs` from here.

Everything it holds lives in orchestration/ by kind: assets/, checks.py, jobs.py (ops in ops/),
sensors/, schedules.py, resources.py.
"""

import dagster as dg

from eventflow_assets.orchestration.assets.analytics import analytics_assets
from eventflow_assets.orchestration.assets.database import postgres_server
from eventflow_assets.orchestration.assets.tables import currency_rates, table_assets
from eventflow_assets.orchestration.assets.topics import topic_assets
from eventflow_assets.orchestration.catalog import catalogued
from eventflow_assets.orchestration.checks import sink_checks
from eventflow_assets.orchestration.jobs import jobs
from eventflow_assets.orchestration.resources import EventFlowEndpoints, EventFlowPySpark
from eventflow_assets.orchestration.schedules import schedules
from eventflow_assets.orchestration.sensors.alerts import failure_alerts
from eventflow_assets.orchestration.sensors.analytics import analytics_automation, finalized_windows
from eventflow_assets.orchestration.sensors.materializations import sink_table_materializations
from eventflow_assets.orchestration.sensors.observations import postgres_observations, topic_observations
from eventflow_assets.orchestration.sensors.supervisor import streaming_supervisor
from eventflow_assets.processing.spark import STREAM_APP, stream_jvm_conf

defs = dg.Definitions(
    # owners, layer tags
    assets=catalogued([*topic_assets, *table_assets, currency_rates, postgres_server, *analytics_assets]),
    asset_checks=sink_checks,
    jobs=jobs,
    sensors=[streaming_supervisor, topic_observations, sink_table_materializations, finalized_windows,
             analytics_automation, failure_alerts, postgres_observations],
    schedules=schedules,
    # Each setting whose EVENTFLOW_* variable is set is bound to it (shown by name, read at run time);
    # the others keep their defaults (the local stack). "pyspark" is streaming_job's session.
    resources={"eventflow": EventFlowEndpoints.from_env(),
               "pyspark": EventFlowPySpark.from_env(STREAM_APP, stream_jvm_conf()),
               # The analytics assets spark-submit jobs/batch_analytics_app.py through Dagster Pipes.
               "pipes_subprocess_client": dg.PipesSubprocessClient()},
)
