"""The maintenance ops, each the one op of its job (orchestration/jobs.py; schedules in schedules.py):

- ``prune_stream_tables`` (``retention_job``, hourly): prune ``stream_progress``, ``stream_batches`` and
  ``rejected_events`` as ``storage/retention.py`` says, with the EVENTFLOW_RETENTION_* settings;
- ``archive_orders_raw`` (``orders_archive_job``, daily): make ``orders_raw``'s coming day partitions and
  archive the days older than ``EVENTFLOW_RETENTION_ORDERS_DAYS`` (detach, export to
  ``<archive dir>/<day>.csv.gz``, drop), as ``storage/partitions.py`` says.
"""

import dagster as dg

from eventflow_assets.errors import EventFlowError
from eventflow_assets.orchestration.resources import EventFlowEndpoints
from eventflow_assets.storage.partitions import archive
from eventflow_assets.storage.retention import Retention, archive_dir, prune
from eventflow_assets.storage.schema import apply_schema


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
