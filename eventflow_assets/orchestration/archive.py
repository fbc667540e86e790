"""``orders_archive_job`` and its daily schedule: make ``orders_raw``'s coming day partitions and
archive the days older than ``EVENTFLOW_RETENTION_ORDERS_DAYS`` (detach, export to
``<archive dir>/<day>.csv.gz``, drop), as ``storage/partitions.py`` says."""

import dagster as dg

from eventflow_assets.errors import EventFlowError
from eventflow_assets.orchestration.resources import EventFlowEndpoints
from eventflow_assets.storage.partitions import archive
from eventflow_assets.storage.retention import Retention, archive_dir
from eventflow_assets.storage.schema import apply_schema

ARCHIVE_JOB = "orders_archive_job"


@dg.op(description="Make orders_raw's day partitions from yesterday to 3 days ahead; detach, export (gzip CSV) and "
                   "drop the days older than EVENTFLOW_RETENTION_ORDERS_DAYS (unset: every day is kept), and finish "
                   "any day an interrupted run began.")
def archive_orders_raw(context: dg.OpExecutionContext, eventflow: EventFlowEndpoints) -> None:
    try:
        keep_days, directory = Retention.from_env().orders_days, archive_dir()
        url = eventflow.endpoints().postgres_url
        apply_schema(url)  # idempotent; the job may be the first thing to touch a new database
        run = archive(url, keep_days, directory)
    except EventFlowError as exc:
        raise dg.Failure(description=str(exc)) from None
    context.add_output_metadata({
        "archived_days": dg.MetadataValue.json([{"day": a.day.isoformat(), "rows": a.rows, "file": a.file}
                                                for a in run.archived]),
        "archived_rows": sum(a.rows for a in run.archived),
        "partitions_ready_through": run.ready_through.isoformat(),
        "keeps_days": keep_days if keep_days is not None else "all",
        "archive_dir": dg.MetadataValue.path(str(directory)),
    })
    kept = "every day is kept" if run.horizon is None else f"days before {run.horizon} are archived"
    archived = ", ".join(f"{a.day} ({a.rows} rows)" for a in run.archived) or "none"
    context.log.info(f"orders_raw: {kept}; archived: {archived}; partitions through {run.ready_through}"
                     + (f" (made now: {', '.join(map(str, run.made))})" if run.made else ""))


@dg.job(name=ARCHIVE_JOB, executor_def=dg.in_process_executor,
        description="orders_raw's day partitions: made ahead, and archived to files past EVENTFLOW_RETENTION_ORDERS_DAYS.")
def orders_archive_job() -> None:
    archive_orders_raw()


orders_archive_schedule = dg.ScheduleDefinition(
    name="orders_archive_schedule", job=orders_archive_job, cron_schedule="37 0 * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="orders_archive_job daily at 00:37 UTC: once the day before has ended, and away from the hourly "
                "retention_job (:07) and the checks and analytics (:00/:15/:30/:45).")
