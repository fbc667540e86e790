"""The sensors, state by state: the supervisor over runs in a test instance, the observer on a real broker."""

import json
import uuid
from datetime import datetime, timezone

import dagster as dg
import psycopg
import pytest
from confluent_kafka import Producer
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from psycopg.types.json import Jsonb

from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.local.processes import free_port
from eventflow_assets.orchestration.resources import EventFlowEndpoints
from eventflow_assets.orchestration.sensors import observations, supervisor
from eventflow_assets.orchestration.sensors.observations import topic_observations
from eventflow_assets.orchestration.sensors.supervisor import streaming_supervisor
from eventflow_assets_tests.helpers import segment_bytes

S = dg.DagsterRunStatus


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def supervise(instance, cursor=None):
    return streaming_supervisor(dg.build_sensor_context(instance=instance, cursor=cursor,
                                                        sensor_name="streaming_supervisor"))


EVENT_FOR = {S.QUEUED: "RUN_ENQUEUED", S.STARTING: "RUN_STARTING", S.STARTED: "RUN_START",
             S.CANCELING: "RUN_CANCELING", S.SUCCESS: "RUN_SUCCESS", S.CANCELED: "RUN_CANCELED",
             S.FAILURE: "RUN_FAILURE"}


def job_origin(job_name: str) -> RemoteJobOrigin:
    """Where the run's job comes from: this code location (queued runs must say)."""
    location = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="eventflow_assets.definitions"))
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"), job_name)


def stream_run(instance, status=S.STARTED, tags=None, job_name="streaming_job"):
    """A run brought into ``status`` by the run event that the daemon or the run worker would record."""
    run = instance.run_storage.add_run(dg.DagsterRun(job_name=job_name, run_id=str(uuid.uuid4()),
                                                     status=S.NOT_STARTED, tags=tags or {},
                                                     remote_job_origin=job_origin(job_name)))
    event = DagsterEvent(DagsterEventType[EVENT_FOR[status]].value, job_name=job_name)
    instance.run_storage.handle_run_event(run.run_id, event)
    return instance.get_run_by_id(run.run_id)


def failed_run(instance):
    return instance.get_run_record_by_id(stream_run(instance, S.FAILURE).run_id)


def test_no_stream_running_launches_one_with_a_run_key_per_attempt(instance):
    result = supervise(instance)
    assert [(r.run_key, r.tags) for r in result.run_requests] == [("stream-attempt-1", {"eventflow/attempt": "1"})]
    assert json.loads(result.cursor) == {"attempt": 1}
    again = supervise(instance, cursor=result.cursor)
    assert [r.run_key for r in again.run_requests] == ["stream-attempt-2"]


@pytest.mark.parametrize("status", [S.QUEUED, S.STARTING, S.STARTED, S.CANCELING])
def test_a_stream_queued_or_running_is_never_doubled(instance, status):
    run = stream_run(instance, status)
    result = supervise(instance, cursor=json.dumps({"attempt": 4}))
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == f"streaming_job is already running: run {run.run_id} is {status.value}"


def test_finished_streams_and_other_jobs_do_not_count_as_running(instance):
    stream_run(instance, S.SUCCESS)
    stream_run(instance, S.CANCELED)
    stream_run(instance, S.STARTED, job_name="producer_job")
    result = supervise(instance, cursor=json.dumps({"attempt": 4}))
    assert [r.run_key for r in result.run_requests] == ["stream-attempt-5"]


def test_three_failures_in_ten_minutes_back_off_until_the_oldest_leaves_the_window(instance, monkeypatch):
    failures = [failed_run(instance) for _ in range(3)]
    result = supervise(instance, cursor=json.dumps({"attempt": 3}))
    assert result.run_requests == []
    retry_at = failures[0].end_time + 600
    assert result.skip_reason.skip_message == (
        f"streaming_job failed 3 times in the last 10 minutes (latest: run {failures[2].dagster_run.run_id}); "
        "backing off, next launch at "
        f"{datetime.fromtimestamp(retry_at, tz=timezone.utc):%Y-%m-%d %H:%M:%S} UTC at the earliest. "
        "See the failed runs' logs.")
    assert json.loads(result.cursor) == {"attempt": 3, "backoff_until": retry_at}

    monkeypatch.setattr(supervisor, "_clock", lambda: retry_at - 1)
    assert supervise(instance, cursor=result.cursor).run_requests == []
    monkeypatch.setattr(supervisor, "_clock", lambda: retry_at + 1)
    after = supervise(instance, cursor=result.cursor)
    assert [r.run_key for r in after.run_requests] == ["stream-attempt-4"]
    assert json.loads(after.cursor) == {"attempt": 4}


def test_two_failures_are_retried_at_once(instance):
    failed_run(instance)
    failed_run(instance)
    assert [r.run_key for r in supervise(instance, cursor=json.dumps({"attempt": 2})).run_requests] == [
        "stream-attempt-3"]


def test_without_a_cursor_attempts_continue_after_the_sensors_earlier_runs(instance):
    for _ in range(2):
        stream_run(instance, S.CANCELED, tags={"dagster/sensor_name": "streaming_supervisor"})
    stream_run(instance, S.CANCELED)  # launched by hand: has no run key of ours
    assert [r.run_key for r in supervise(instance).run_requests] == ["stream-attempt-3"]


def test_switched_off_it_skips_and_says_why(instance, monkeypatch):
    monkeypatch.setenv("EVENTFLOW_STREAMING_SUPERVISOR", "off")
    result = supervise(instance)
    assert isinstance(result, dg.SkipReason)
    assert "EVENTFLOW_STREAMING_SUPERVISOR=off" in result.skip_message


def observe(cursor=None):
    context = dg.build_sensor_context(cursor=cursor, resources={"eventflow": EventFlowEndpoints()})
    return topic_observations(context)


def publish(bootstrap, counts: dict[tuple[str, int], int]) -> None:
    p = Producer({"bootstrap.servers": bootstrap})
    for (topic, partition), n in counts.items():
        for i in range(n):
            p.produce(topic, b'{"n": %d}' % i, b"k", partition=partition)
    assert p.flush(30) == 0


def disk_bytes(broker, topic: str) -> int:
    """The topic's log segments as the broker's data directory holds them (one node: one replica)."""
    return segment_bytes(broker._data_dir(1), topic)


def metadata(result) -> dict:
    return {e.asset_key.path[1]: {k: v.value for k, v in e.metadata.items()} for e in result.asset_events}


def test_observations_report_offsets_records_rate_and_lag(eventflow_env, kafka_broker, pg_url, monkeypatch):
    provision_topics({"bootstrap.servers": kafka_broker.bootstrap_servers})
    publish(kafka_broker.bootstrap_servers, {("user-events", 0): 5, ("user-events", 2): 7, ("orders", 1): 120,
                                             ("product-view", 0): 1, ("product-view", 1): 2, ("product-view", 2): 3})
    with psycopg.connect(pg_url) as conn:
        for query, batch, ago, lag in [
                ("orders", 3, 20, {"orders:0": 0, "orders:1": 40, "orders:2": 0}),
                ("orders", 4, 10, {"orders:0": 0, "orders:1": 20, "orders:2": 0}),  # the latest counts
                ("product-view", 7, 10, {"product-view:0": 1, "product-view:1": 0}),
                ("user-events", 2, 10, {"user-events:0": 0, "user-events:2": 3})]:
            conn.execute("INSERT INTO stream_progress (query_name, batch_id, recorded_at, input_rows, output_rows, "
                         "late_rows, rejected_rows, duration_ms, lag) "
                         "VALUES (%s, %s, now() - make_interval(secs => %s), 0, 0, 0, 0, 0, %s)",
                         (query, batch, ago, Jsonb(lag)))
    monkeypatch.setattr(observations, "_clock", lambda: 1000.0)
    first = observe()
    on_disk = {t: disk_bytes(kafka_broker, t) for t in ("user-events", "product-view", "orders")}
    assert min(on_disk.values()) > 0
    assert metadata(first) == {
        "user-events": {"end_offset_p0": 5, "end_offset_p1": 0, "end_offset_p2": 7, "records": 12,
                        "lag_user-events": 3, "under_replicated_partitions": 0,
                        "log_size_bytes": on_disk["user-events"]},
        "product-view": {"end_offset_p0": 1, "end_offset_p1": 2, "end_offset_p2": 3, "records": 6,
                         "lag_product-view": 1, "under_replicated_partitions": 0,
                         "log_size_bytes": on_disk["product-view"]},
        "orders": {"end_offset_p0": 0, "end_offset_p1": 120, "end_offset_p2": 0, "records": 120,
                   "lag_orders": 20, "under_replicated_partitions": 0, "log_size_bytes": on_disk["orders"]},
    }
    assert json.loads(first.cursor) == {"at": 1000.0, "ends": {"user-events": 12, "product-view": 6, "orders": 120}}

    publish(kafka_broker.bootstrap_servers, {("orders", 0): 50, ("user-events", 1): 10})
    monkeypatch.setattr(observations, "_clock", lambda: 1010.0)
    second = metadata(observe(first.cursor))
    assert {topic: m["messages_per_s"] for topic, m in second.items()} == {
        "user-events": 1.0, "product-view": 0.0, "orders": 5.0}
    # The logs grew by what was published since: 10 and 50 more records, on disk as the broker reports.
    assert {t: m["log_size_bytes"] for t, m in second.items()} == {
        t: disk_bytes(kafka_broker, t) for t in ("user-events", "product-view", "orders")}
    assert second["orders"]["log_size_bytes"] > on_disk["orders"]
    assert second["product-view"]["log_size_bytes"] == on_disk["product-view"]


def test_observations_skip_while_kafka_is_unreachable(eventflow_env, monkeypatch):
    monkeypatch.setenv("EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    result = observe()
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message.startswith("cannot observe the topics: cannot reach Kafka at 127.0.0.1:")
