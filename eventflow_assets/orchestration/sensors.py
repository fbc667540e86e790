"""Sensors: the streaming supervisor, and periodic observations of the topics.

Both are RUNNING by default, so `eventflow up` (which starts `dg dev`) streams and observes
without a click. Both keep a JSON cursor and say why they skip.
"""

import json
import os
import time
from datetime import datetime, timezone

import dagster as dg
import psycopg

from eventflow_assets.errors import EventFlowError, first_line
from eventflow_assets.ingestion.events import TOPIC_NAMES
from eventflow_assets.orchestration.probes import stream_lag, topic_ranges, topic_storage
from eventflow_assets.orchestration.resources import EventFlowEndpoints
from eventflow_assets.orchestration.streaming import STREAMING_JOB, streaming_job

# `eventflow up --no-streaming` sets this to "off" for the Dagster processes.
SUPERVISOR_SWITCH = "EVENTFLOW_STREAMING_SUPERVISOR"
SUPERVISOR = "streaming_supervisor"
OBSERVER = "topic_observations"
ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
          dg.DagsterRunStatus.CANCELING]
MAX_FAILURES = 3
FAILURE_WINDOW_S = 600
KAFKA_TIMEOUT_S = 3.0

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


def _topic_metadata(topic: str, ranges: dict, previous: dict, elapsed: float | None, lag: dict,
                    storage: tuple[dict, dict | None]) -> dict:
    ends = {p: hi for (t, p), (_, hi) in sorted(ranges.items()) if t == topic}
    metadata: dict = {f"end_offset_p{p}": hi for p, hi in ends.items()}
    metadata["records"] = sum(hi - lo for (t, _), (lo, hi) in ranges.items() if t == topic)
    lagging, sizes = storage
    if topic in lagging:
        metadata["under_replicated_partitions"] = lagging[topic]
    if sizes is not None and topic in sizes:
        metadata["log_size_bytes"] = sizes[topic]
    total_end, before = sum(ends.values()), previous.get(topic)
    if elapsed and before is not None and total_end >= before:
        metadata["messages_per_s"] = round((total_end - before) / elapsed, 3)
    for query, parts in sorted(lag.items()):  # each query that reads the topic (one per topic today)
        behind = [n for tp, n in parts.items() if tp.rsplit(":", 1)[0] == topic]
        if behind:
            metadata[f"lag_{query}"] = sum(behind)
    return metadata


@dg.sensor(name=OBSERVER, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Observes the Kafka topics every 30 s: end offset per partition, records held, messages/s "
                       "since the previous observation, how far each streaming query is behind, under-replicated "
                       "partitions and the log's bytes on disk (all replicas).")
def topic_observations(context: dg.SensorEvaluationContext, eventflow: EventFlowEndpoints):
    try:
        endpoints = eventflow.endpoints()
        ranges = topic_ranges(endpoints.kafka_config(), TOPIC_NAMES, timeout=KAFKA_TIMEOUT_S)
    except EventFlowError as exc:
        return dg.SkipReason(f"cannot observe the topics: {exc}")
    try:
        lag = stream_lag(endpoints.postgres_url)
    except (EventFlowError, psycopg.Error) as exc:
        context.log.warning(f"no streaming lag: {first_line(exc)}")
        lag = {}
    try:
        lagging, sizes, no_sizes = topic_storage(endpoints.kafka_config(), TOPIC_NAMES, timeout=KAFKA_TIMEOUT_S)
    except EventFlowError as exc:
        context.log.warning(f"no replication or log size figures: {first_line(exc)}")
        lagging, sizes, no_sizes = {}, None, None
    if no_sizes:
        context.log.warning(f"no log sizes: {no_sizes}")
    now = _clock()
    cursor = json.loads(context.cursor) if context.cursor else {}
    elapsed = now - cursor["at"] if cursor.get("at") and now > cursor["at"] else None
    topics = sorted({t for t, _ in ranges}, key=TOPIC_NAMES.index)
    if not topics:
        return dg.SkipReason("none of the topics exists yet (materialize the kafka/* assets or run `eventflow up`)")
    events = [dg.AssetObservation(asset_key=["kafka", t],
                                  metadata=_topic_metadata(t, ranges, cursor.get("ends", {}), elapsed, lag,
                                                            (lagging, sizes)))
              for t in topics]
    ends = {t: sum(hi for (name, _), (_, hi) in ranges.items() if name == t) for t in topics}
    return dg.SensorResult(asset_events=events, cursor=json.dumps({"at": now, "ends": ends}))
