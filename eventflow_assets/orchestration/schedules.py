"""Every schedule, on by default like the sensors, at minutes apart from each other: the sink-table
checks every quarter hour, retention hourly at :07, the orders archive daily at 00:37 UTC. (The global
analyses follow their automation condition instead: orchestration/automation.py.)"""

import dagster as dg

from eventflow_assets.orchestration.jobs import orders_archive_job, retention_job, sink_checks_job

sink_checks_schedule = dg.ScheduleDefinition(
    name="sink_checks_schedule", job=sink_checks_job, cron_schedule="*/15 * * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING)

retention_schedule = dg.ScheduleDefinition(
    name="retention_schedule", job=retention_job, cron_schedule="7 * * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="retention_job every hour (at :07, away from the checks and analytics at :00/:15/:30/:45), so "
                "each run deletes about an hour's worth of rows.")

orders_archive_schedule = dg.ScheduleDefinition(
    name="orders_archive_schedule", job=orders_archive_job, cron_schedule="37 0 * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="orders_archive_job daily at 00:37 UTC: once the day before has ended, and away from the hourly "
                "retention_job (:07) and the checks and analytics (:00/:15/:30/:45).")

schedules = [sink_checks_schedule, retention_schedule, orders_archive_schedule]
