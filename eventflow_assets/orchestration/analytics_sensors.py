"""Sensors that run the analytics as the stream's watermark finalizes windows.

``finalized_windows`` requests the revenue-trends partition of every window whose end the revenue
query's watermark has reached, once: its JSON cursor holds the next window to request, and each
request's ``run_key`` names its window (or range), which the daemon never launches twice. A window
that finalizes late (stream stopped or behind, watermark jumping several windows) is requested
whenever the watermark gets there, with all the others it passed. Up to ``SINGLE_WINDOW_RUNS``
windows at once get a run each; a larger backlog (the stream was down for an hour) is one run
over the range, as a UI backfill would be, so it costs one Spark session instead of hundreds.
Runs are idempotent (each replaces its rows), so a repeat after a reset cursor only costs time.
A run that fails after its retries leaves its partitions missing: backfill "failed and missing"
from the asset's page.

``global_analytics_refresh`` re-runs the global analyses when windows have finalized since its
last request, at most every ``GLOBAL_MIN_INTERVAL_S`` seconds and never while one is queued or
running.
"""

import json
import time
from datetime import datetime, timezone

import dagster as dg
import psycopg

from eventflow_assets.errors import EventFlowError, first_line
from eventflow_assets.orchestration.analytics_assets import (GLOBAL_JOB, global_analytics_job,
                                                             revenue_trends_job)
from eventflow_assets.orchestration.probes import earliest_revenue_window, latest_watermark
from eventflow_assets.orchestration.resources import EventFlowEndpoints
from eventflow_assets.orchestration.sensors import ACTIVE
from eventflow_assets.orchestration.windows import (TRENDS_START, WINDOW, final_through, final_windows, first_window,
                                                    partition_key)
from eventflow_assets.ingestion.events import ORDERS

WINDOW_SENSOR = "finalized_windows"
GLOBAL_SENSOR = "global_analytics_refresh"
SINGLE_WINDOW_RUNS = 3
MAX_WINDOWS_PER_RUN = 288  # one day of windows per ranged run
# Dagster's tags for a run over a partition range (what a single-run backfill launches).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
GLOBAL_MIN_INTERVAL_S = 180

_clock = time.time  # tests move time forward


def _now() -> datetime:
    return datetime.fromtimestamp(_clock(), tz=timezone.utc)


def _fmt(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _problem(exc: Exception) -> str:
    return first_line(exc)


@dg.sensor(name=WINDOW_SENSOR, job=revenue_trends_job, minimum_interval_seconds=15,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Materializes the revenue_trends partition of each 5-minute window once the orders "
                       "query's watermark (stream_progress) is at or past the window's end; each window once "
                       f"(run_key = window); more than {SINGLE_WINDOW_RUNS} final at once run as one ranged run.")
def finalized_windows(context: dg.SensorEvaluationContext, eventflow: EventFlowEndpoints):
    cursor = json.loads(context.cursor) if context.cursor else {}
    try:
        url = eventflow.endpoints().postgres_url
        watermark = latest_watermark(url, ORDERS)
        if watermark is None:
            return dg.SkipReason("the orders query has no watermark yet (no order streamed)")
        if "next_window" in cursor:
            next_window = max(datetime.fromisoformat(cursor["next_window"]), TRENDS_START)
        else:
            earliest = earliest_revenue_window(url)
            if earliest is None:
                return dg.SkipReason("revenue_by_currency_5min holds no window yet")
            next_window = first_window(earliest, watermark)
    except (EventFlowError, psycopg.Error) as exc:
        return dg.SkipReason(f"cannot read the stream's progress: {_problem(exc)}")
    new_cursor = {"next_window": next_window.isoformat()}
    windows = final_windows(next_window, watermark, _now(), MAX_WINDOWS_PER_RUN)
    if not windows:
        return dg.SensorResult(
            skip_reason=f"watermark {_fmt(watermark)}: window {partition_key(next_window)} (ends "
                        f"{_fmt(next_window + WINDOW)}) is not final yet", cursor=json.dumps(new_cursor))
    first, last = partition_key(windows[0]), partition_key(windows[-1])
    tags = {"eventflow/watermark": watermark.isoformat()}
    if len(windows) <= SINGLE_WINDOW_RUNS:
        requests = [dg.RunRequest(run_key=f"window-{partition_key(w)}", partition_key=partition_key(w), tags=tags)
                    for w in windows]
    else:
        requests = [dg.RunRequest(run_key=f"windows-{first}..{last}",
                                  tags={**tags, RANGE_START_TAG: first, RANGE_END_TAG: last})]
    context.log.info(f"watermark {_fmt(watermark)}: requesting {len(windows)} final windows {first} .. {last}")
    new_cursor["next_window"] = (windows[-1] + WINDOW).isoformat()
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(new_cursor))


@dg.sensor(name=GLOBAL_SENSOR, job=global_analytics_job, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Refreshes top revenue, conversion rates and user segments after new windows finalize, "
                       f"at most once every {GLOBAL_MIN_INTERVAL_S // 60} minutes and one run at a time.")
def global_analytics_refresh(context: dg.SensorEvaluationContext, eventflow: EventFlowEndpoints):
    cursor = json.loads(context.cursor) if context.cursor else {}
    try:
        watermark = latest_watermark(eventflow.endpoints().postgres_url, ORDERS)
    except (EventFlowError, psycopg.Error) as exc:
        return dg.SkipReason(f"cannot read the stream's progress: {_problem(exc)}")
    if watermark is None:
        return dg.SkipReason("the orders query has no watermark yet (no order streamed)")
    through = final_through(watermark)
    done = datetime.fromisoformat(cursor["final_through"]) if "final_through" in cursor else None
    if done is not None and through <= done:
        return dg.SkipReason(f"no window has finalized since the refresh through {_fmt(done)}")
    now = _clock()
    since = now - cursor.get("requested_at", 0)
    if since < GLOBAL_MIN_INTERVAL_S:
        return dg.SkipReason(f"windows through {_fmt(through)} are final; last refresh requested {since:.0f}s ago, "
                             f"next one in {GLOBAL_MIN_INTERVAL_S - since:.0f}s at the earliest")
    active = context.instance.get_run_records(dg.RunsFilter(job_name=GLOBAL_JOB, statuses=ACTIVE), limit=1)
    if active:
        run = active[0].dagster_run
        return dg.SkipReason(f"{GLOBAL_JOB} run {run.run_id} is {run.status.value}; waiting for it to finish")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"global-through-{through.isoformat()}",
                                    tags={"eventflow/final_through": through.isoformat()})],
        cursor=json.dumps({"final_through": through.isoformat(), "requested_at": now}))
