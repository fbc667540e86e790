"""Schedules, on by default like the sensors: the sink-table checks every 15 minutes. (The global
analyses follow their automation condition instead: orchestration/automation.py.)"""

import dagster as dg

from eventflow_assets.orchestration.table_assets import SINK_TABLES, table_key

SINK_CHECKS_JOB = "sink_checks_job"

sink_checks_job = dg.define_asset_job(
    SINK_CHECKS_JOB, selection=dg.AssetSelection.checks_for_assets(*(table_key(t) for t in SINK_TABLES)),
    description="Every asset check of the streaming sink tables (agreement, duplicates, freshness, rejects).")

sink_checks_schedule = dg.ScheduleDefinition(
    name="sink_checks_schedule", job=sink_checks_job, cron_schedule="*/15 * * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING)
