"""``retention_job`` and its hourly schedule: prune ``stream_progress``, ``stream_batches`` and
``rejected_events`` as ``storage/retention.py`` says, with the EVENTFLOW_RETENTION_* settings."""

import dagster as dg

from eventflow_assets.errors import EventFlowError
from eventflow_assets.orchestration.resources import EventFlowEndpoints
from eventflow_assets.storage.retention import Retention, prune
from eventflow_assets.storage.schema import apply_schema

RETENTION_JOB = "retention_job"


@dg.op(description="Delete progress and ledger rows, and rejected records, older than their retention (in bounded "
                   "statements); the newest progress and ledger row of every (query, checkpoint) always stays.")
def prune_stream_tables(context: dg.OpExecutionContext, eventflow: EventFlowEndpoints) -> None:
    try:
        retention = Retention.from_env()
    except EventFlowError as exc:
        raise dg.Failure(description=str(exc)) from None
    url = eventflow.endpoints().postgres_url
    apply_schema(url)  # idempotent; the job may be the first thing to touch a new database
    pruned = prune(url, retention)
    days = retention.days()
    context.add_output_metadata({
        **{f"deleted_{table}": p.rows for table, p in pruned.items()},
        **{f"keeps_days_{table}": d for table, d in days.items()},
        "delete_rows_per_statement": retention.delete_rows,
    })
    context.log.info("; ".join(f"{table}: {p.rows} rows older than {days[table]} days deleted in {p.statements} "
                               f"statements" for table, p in pruned.items()))


@dg.job(name=RETENTION_JOB, executor_def=dg.in_process_executor,
        description="Retention of stream_progress, stream_batches and rejected_events (EVENTFLOW_RETENTION_*).")
def retention_job() -> None:
    prune_stream_tables()


retention_schedule = dg.ScheduleDefinition(
    name="retention_schedule", job=retention_job, cron_schedule="7 * * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="retention_job every hour (at :07, away from the checks and analytics at :00/:15/:30/:45), so "
                "each run deletes about an hour's worth of rows.")
