"""Schedules, on by default like the sensors: the sink-table checks every 15 minutes, and the global
analyses every 30 minutes (the sensor refreshes them sooner while windows finalize)."""

import dagster as dg

from eventflow_assets.orchestration.analytics_assets import global_analytics_job
from eventflow_assets.orchestration.table_assets import SINK_TABLES, table_key

SINK_CHECKS_JOB = "sink_checks_job"

sink_checks_job = dg.define_asset_job(
    SINK_CHECKS_JOB, selection=dg.AssetSelection.checks_for_assets(*(table_key(t) for t in SINK_TABLES)),
    description="Every asset check of the streaming sink tables (agreement, duplicates, freshness, rejects).")

sink_checks_schedule = dg.ScheduleDefinition(
    name="sink_checks_schedule", job=sink_checks_job, cron_schedule="*/15 * * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING)

global_analytics_schedule = dg.ScheduleDefinition(
    name="global_analytics_schedule", job=global_analytics_job, cron_schedule="*/30 * * * *",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Top revenue, conversion rates and user segments every 30 minutes, whether or not windows "
                "finalize (the stream stopped, a backfill rewrote rows).")
