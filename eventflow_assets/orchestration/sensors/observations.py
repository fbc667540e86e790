"""Observations every 30 s of what EventFlow runs on: the Kafka topics and the PostgreSQL server.

Both sensors are RUNNING by default and say why they skip. They report ``AssetObservation``s of
external assets (orchestration/assets/): a sensor rather than an ``observable_source_asset``, whose
every observation would be a run of its own.
"""

import json
import time

import dagster as dg
import psycopg

from eventflow_assets.errors import EventFlowError, first_line
from eventflow_assets.ingestion.events import TOPIC_NAMES
from eventflow_assets.orchestration.assets.database import INTERVAL_S, observation
from eventflow_assets.orchestration.assets.database import OBSERVER as PG_OBSERVER
from eventflow_assets.orchestration.assets.keys import topic_key
from eventflow_assets.orchestration.probes import server_connections, stream_lag, topic_ranges, topic_storage
from eventflow_assets.orchestration.resources import EventFlowEndpoints

OBSERVER = "topic_observations"
KAFKA_TIMEOUT_S = 3.0

_clock = time.time  # tests move time forward


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
    events = [dg.AssetObservation(asset_key=topic_key(t),
                                  metadata=_topic_metadata(t, ranges, cursor.get("ends", {}), elapsed, lag,
                                                            (lagging, sizes)))
              for t in topics]
    ends = {t: sum(hi for (name, _), (_, hi) in ranges.items() if name == t) for t in topics}
    return dg.SensorResult(asset_events=events, cursor=json.dumps({"at": now, "ends": ends}))


@dg.sensor(name=PG_OBSERVER, minimum_interval_seconds=INTERVAL_S, default_status=dg.DefaultSensorStatus.RUNNING,
           description=f"Observes the PostgreSQL server every {INTERVAL_S} s: client connections in use (all "
                       "databases, this database, active), max_connections and the share used, the database's size.")
def postgres_observations(context: dg.SensorEvaluationContext, eventflow: EventFlowEndpoints):
    try:
        figures = server_connections(eventflow.endpoints().postgres_url)
    except (EventFlowError, psycopg.Error) as exc:
        return dg.SkipReason(f"cannot observe PostgreSQL: {first_line(exc)}")
    return dg.SensorResult(asset_events=[observation(figures)])
