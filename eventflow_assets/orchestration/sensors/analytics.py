"""What keeps the analytics current: the watermark sensor for the trends, declarative automation
for the global analyses.

``finalized_windows`` requests the revenue-trends partition (a UTC day) of every window whose end
the orders query's watermark has reached: its JSON cursor holds the next window to request, and
each request's ``run_key`` names the windows that became final, which the daemon never launches
twice. A day's run recomputes all of that day's windows final by then, so each newly final window
re-runs its day. Windows that finalize late (stream stopped or behind, watermark jumping) are
requested whenever the watermark gets there, all in one run: one day's partition, or a run over
the range of days (as a UI backfill is), at most ``MAX_WINDOWS_PER_RUN`` windows per tick. Runs
are idempotent (each replaces its rows). A run that fails after its retries leaves its day
missing or failed: backfill "failed and missing" from the asset's page.

``analytics_automation`` evaluates the global analyses' automation condition
(orchestration/automation.py) every 30 s, and is on by default.
"""

import json
import time
from datetime import datetime, timezone

import dagster as dg
import psycopg

from eventflow_assets.errors import EventFlowError, first_line
from eventflow_assets.ingestion.events import ORDERS, WINDOW_LABEL
from eventflow_assets.orchestration.assets.analytics import GLOBAL_KEYS
from eventflow_assets.orchestration.jobs import ANALYTICS_RUN_TAGS, revenue_trends_job
from eventflow_assets.orchestration.probes import earliest_revenue_window, latest_watermark
from eventflow_assets.orchestration.resources import EventFlowEndpoints
from eventflow_assets.orchestration.windows import FIRST_DAY, WINDOW, day_keys, final_windows, first_window, window_name

WINDOW_SENSOR = "finalized_windows"
AUTOMATION_SENSOR = "analytics_automation"
MAX_WINDOWS_PER_RUN = 7 * 288  # a week of windows per run, when a long backlog finalizes at once
# Dagster's tags for a run over a partition range (what a single-run backfill launches).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

_clock = time.time  # tests move time forward


def _now() -> datetime:
    return datetime.fromtimestamp(_clock(), tz=timezone.utc)


def _fmt(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@dg.sensor(name=WINDOW_SENSOR, job=revenue_trends_job, minimum_interval_seconds=15,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description=f"Materializes the revenue-trends day of each {WINDOW_LABEL} window once the orders query's "
                       "watermark (stream_progress) is at or past the window's end: the day's run recomputes "
                       "its final windows. Each window once (run_key = windows); a backlog spanning days is one "
                       "run over those days.")
def finalized_windows(context: dg.SensorEvaluationContext, eventflow: EventFlowEndpoints):
    cursor = json.loads(context.cursor) if context.cursor else {}
    try:
        url = eventflow.endpoints().postgres_url
        watermark = latest_watermark(url, ORDERS)
        if watermark is None:
            return dg.SkipReason("the orders query has no watermark yet (no order streamed)")
        if "next_window" in cursor:
            next_window = max(datetime.fromisoformat(cursor["next_window"]), FIRST_DAY)
        else:
            earliest = earliest_revenue_window(url)
            if earliest is None:
                return dg.SkipReason("revenue_by_currency_5min holds no window yet")
            next_window = first_window(earliest, watermark)
    except (EventFlowError, psycopg.Error) as exc:
        return dg.SkipReason(f"cannot read the stream's progress: {first_line(exc)}")
    new_cursor = {"next_window": next_window.isoformat()}
    windows = final_windows(next_window, watermark, _now(), MAX_WINDOWS_PER_RUN)
    if not windows:
        return dg.SensorResult(
            skip_reason=f"watermark {_fmt(watermark)}: window {window_name(next_window)} (ends "
                        f"{_fmt(next_window + WINDOW)}) is not final yet", cursor=json.dumps(new_cursor))
    first, last = window_name(windows[0]), window_name(windows[-1])
    run_key = f"window-{first}" if len(windows) == 1 else f"windows-{first}..{last}"
    tags = {"eventflow/watermark": watermark.isoformat()}
    days = day_keys(windows)
    if len(days) == 1:
        request = dg.RunRequest(run_key=run_key, partition_key=days[0], tags=tags)
    else:
        request = dg.RunRequest(run_key=run_key, tags={**tags, RANGE_START_TAG: days[0], RANGE_END_TAG: days[-1]})
    context.log.info(f"watermark {_fmt(watermark)}: {len(windows)} windows final ({first} .. {last}): "
                     f"requesting {' .. '.join(dict.fromkeys((days[0], days[-1])))}")
    new_cursor["next_window"] = (windows[-1] + WINDOW).isoformat()
    return dg.SensorResult(run_requests=[request], cursor=json.dumps(new_cursor))


analytics_automation = dg.AutomationConditionSensorDefinition(
    AUTOMATION_SENSOR, target=dg.AssetSelection.assets(*GLOBAL_KEYS), default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30, run_tags=ANALYTICS_RUN_TAGS,
    description="Requests the global analyses (top revenue, conversion rates, user segments) when their "
                "automation condition is true: once per refresh period, after new rows reached their inputs.")
