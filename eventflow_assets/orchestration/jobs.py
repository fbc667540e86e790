"""Every job, in one place. Asset jobs select assets (orchestration/assets/); the others run one op
each (orchestration/ops/). Their schedules are in schedules.py, the sensors that launch them in sensors/.
Each job's resources are the Definitions' (definitions.py), where the UI's resource pages show them.
"""

import dagster as dg

from eventflow_assets.local.dagster_instance import STREAM_TAG
from eventflow_assets.orchestration.assets.analytics import GLOBAL_KEYS, TREND_KEYS
from eventflow_assets.orchestration.assets.keys import table_key
from eventflow_assets.orchestration.ops.maintenance import archive_orders_raw, prune_stream_tables
from eventflow_assets.orchestration.ops.producer import produce_events
from eventflow_assets.orchestration.ops.streaming import stream_to_postgres
from eventflow_assets.storage.tables import SINK_TABLES

STREAMING_JOB = "streaming_job"
PRODUCER_JOB = "producer_job"
TRENDS_JOB = "revenue_trends_job"
GLOBAL_JOB = "global_analytics_job"
SINK_CHECKS_JOB = "sink_checks_job"
RETENTION_JOB = "retention_job"
ARCHIVE_JOB = "orders_archive_job"
# The analytics jobs' runs are retried twice when they fail (the instance's run_retries); runs
# launched from the UI are not.
ANALYTICS_RUN_TAGS = {"dagster/max_retries": "2"}


@dg.job(name=STREAMING_JOB, executor_def=dg.in_process_executor, tags={STREAM_TAG: "true"},
        description="The streaming queries, hosted by one long-running op. `streaming_supervisor` keeps one "
                    "run of it going; terminate the run to stop the stream (queries stop after their batch).")
def streaming_job() -> None:
    stream_to_postgres()


@dg.job(name=PRODUCER_JOB, executor_def=dg.in_process_executor,
        description="Publish a bounded number of generated events (op config: count or duration_seconds, rate).")
def producer_job() -> None:
    produce_events()


revenue_trends_job = dg.define_asset_job(
    TRENDS_JOB, selection=dg.AssetSelection.assets(*TREND_KEYS),
    executor_def=dg.in_process_executor, tags=ANALYTICS_RUN_TAGS,
    description="The revenue trends of one UTC day's final windows (or a range of days, as one run): requested "
                "by the finalized_windows sensor each time a window becomes final.")

global_analytics_job = dg.define_asset_job(
    GLOBAL_JOB, selection=dg.AssetSelection.assets(*GLOBAL_KEYS), executor_def=dg.in_process_executor,
    tags=ANALYTICS_RUN_TAGS, description="Top revenue by currency, conversion rates and user segments over all "
                                         "data, in one run: a spark-submit of the batch analytics app each.")

sink_checks_job = dg.define_asset_job(
    SINK_CHECKS_JOB, selection=dg.AssetSelection.checks_for_assets(*(table_key(t) for t in SINK_TABLES)),
    description="Every asset check of the streaming sink tables (agreement, duplicates, freshness, rejects).")


@dg.job(name=RETENTION_JOB, executor_def=dg.in_process_executor,
        description="Retention of stream_progress, stream_batches and rejected_events (EVENTFLOW_RETENTION_*).")
def retention_job() -> None:
    prune_stream_tables()


@dg.job(name=ARCHIVE_JOB, executor_def=dg.in_process_executor,
        description="orders_raw's day partitions: made ahead, and archived to files past EVENTFLOW_RETENTION_ORDERS_DAYS.")
def orders_archive_job() -> None:
    archive_orders_raw()


jobs = [streaming_job, producer_job, revenue_trends_job, global_analytics_job, sink_checks_job, retention_job,
        orders_archive_job]
