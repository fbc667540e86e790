"""The streaming supervisor: keeps one run of ``streaming_job`` going.

RUNNING by default, so `eventflow up` (which starts `dg dev`) streams without a click. It keeps a
JSON cursor and says why it skips.
"""

import json
import os
import time
from datetime import datetime, timezone

import dagster as dg

from eventflow_assets.orchestration.jobs import STREAMING_JOB, streaming_job

# `eventflow up --no-streaming` sets this to "off" for the Dagster processes.
SUPERVISOR_SWITCH = "EVENTFLOW_STREAMING_SUPERVISOR"
SUPERVISOR = "streaming_supervisor"
ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
          dg.DagsterRunStatus.CANCELING]
MAX_FAILURES = 3
FAILURE_WINDOW_S = 600

_clock = time.time  # tests move time forward


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@dg.sensor(name=SUPERVISOR, job=streaming_job, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Keeps one run of streaming_job going: launches one when none is queued or running, "
                       f"backs off for up to {FAILURE_WINDOW_S // 60} minutes after {MAX_FAILURES} failed runs "
                       f"within {FAILURE_WINDOW_S // 60} minutes. Stop this sensor to stop restarting the stream; "
                       f"{SUPERVISOR_SWITCH}=off (eventflow up --no-streaming) makes it skip.")
def streaming_supervisor(context: dg.SensorEvaluationContext):
    cursor = json.loads(context.cursor) if context.cursor else {}
    if os.environ.get(SUPERVISOR_SWITCH, "on").lower() == "off":
        return dg.SkipReason(f"{SUPERVISOR_SWITCH}=off (eventflow up --no-streaming): not launching streaming_job")
    instance = context.instance
    active = instance.get_run_records(dg.RunsFilter(job_name=STREAMING_JOB, statuses=ACTIVE), limit=1)
    if active:
        run = active[0].dagster_run
        return dg.SkipReason(f"streaming_job is already running: run {run.run_id} is {run.status.value}")

    now = _clock()
    failed = instance.get_run_records(dg.RunsFilter(
        job_name=STREAMING_JOB, statuses=[dg.DagsterRunStatus.FAILURE],
        updated_after=datetime.fromtimestamp(now - FAILURE_WINDOW_S, tz=timezone.utc)))
    ended = sorted((r.end_time or r.update_timestamp.timestamp(), r.dagster_run.run_id) for r in failed)
    recent = [(t, run_id) for t, run_id in ended if t > now - FAILURE_WINDOW_S]
    if len(recent) >= MAX_FAILURES:
        retry_at = recent[-MAX_FAILURES][0] + FAILURE_WINDOW_S
        return dg.SensorResult(
            skip_reason=f"streaming_job failed {len(recent)} times in the last {FAILURE_WINDOW_S // 60} minutes "
                        f"(latest: run {recent[-1][1]}); backing off, next launch at {_utc(retry_at)} at the "
                        "earliest. See the failed runs' logs.",
            cursor=json.dumps({**cursor, "backoff_until": retry_at}))

    if "attempt" in cursor:
        attempt = cursor["attempt"] + 1
    else:  # no cursor (new or reset): continue after this sensor's earlier launches, whose run keys exist
        attempt = instance.get_runs_count(dg.RunsFilter(
            job_name=STREAMING_JOB, tags={"dagster/sensor_name": SUPERVISOR})) + 1
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"stream-attempt-{attempt}",
                                    tags={"eventflow/attempt": str(attempt)})],
        cursor=json.dumps({"attempt": attempt}))
