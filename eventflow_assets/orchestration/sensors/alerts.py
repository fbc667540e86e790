"""Failures of the stream and of the analytics: logged by a run-failure sensor and, when
EVENTFLOW_ALERT_WEBHOOK is set, posted there as JSON (a chat or paging webhook).

The webhook URL often carries a token: it is never logged. A post that fails is logged and
the tick goes on; Dagster keeps the failed run either way.
"""

from __future__ import annotations

import json
import os
import urllib.request
from datetime import datetime, timezone

import dagster as dg

from eventflow_assets.orchestration.jobs import global_analytics_job, revenue_trends_job, streaming_job
from eventflow_assets.orchestration.sensors.analytics import AUTOMATION_SENSOR

ALERT_VAR = "EVENTFLOW_ALERT_WEBHOOK"
FAILURE_ALERTS = "failure_alerts"
POST_TIMEOUT_S = 5.0
ALERTED_JOBS = {job.name for job in (streaming_job, revenue_trends_job, global_analytics_job)}


def alert_payload(run: dg.DagsterRun, message: str | None, failed_at: datetime) -> dict:
    """What is posted: which job failed, when, and the error's first line (no configuration)."""
    first = (message or "").strip().splitlines()
    return {"event": "eventflow_run_failed", "job": run.job_name, "run_id": run.run_id,
            "failed_at": failed_at.isoformat(), "error": first[0] if first else "",
            "launched_by": run.tags.get("dagster/sensor_name") or run.tags.get("dagster/schedule_name") or "manual"}


def post_alert(url: str, payload: dict) -> int:
    """POST ``payload`` as JSON; the HTTP status (an error status raises)."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "eventflow"})
    with urllib.request.urlopen(request, timeout=POST_TIMEOUT_S) as response:
        return response.status


def alerted(run: dg.DagsterRun) -> bool:
    """A run of the stream's or the analytics' jobs, or one the global analyses' automation launched
    (those run Dagster's implicit asset job, so their job name does not tell)."""
    return run.job_name in ALERTED_JOBS or run.tags.get("dagster/sensor_name") == AUTOMATION_SENSOR


# Every job of the code location is watched, and alerted() keeps the ones above.
@dg.run_failure_sensor(name=FAILURE_ALERTS, default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30,
                       description=f"Logs each failed run of the stream or the analytics and posts it to "
                                   f"{ALERT_VAR} when that is set.")
def failure_alerts(context: dg.RunFailureSensorContext) -> None:
    if not alerted(context.dagster_run):
        return
    payload = alert_payload(context.dagster_run, context.failure_event.message, datetime.now(timezone.utc))
    context.log.warning(f"{payload['job']} run {payload['run_id']} failed: {payload['error']}")
    url = os.environ.get(ALERT_VAR)
    if not url:
        return
    try:
        status = post_alert(url, payload)
        context.log.info(f"alert posted to {ALERT_VAR} (HTTP {status})")
    except (OSError, ValueError) as exc:  # urllib's errors are OSErrors; a malformed URL is a ValueError
        context.log.error(f"posting the alert to {ALERT_VAR} failed: {type(exc).__name__}")
