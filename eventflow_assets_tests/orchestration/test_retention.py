"""retention_job through Dagster on a real PostgreSQL, with its settings from EVENTFLOW_RETENTION_*,
and the hourly schedule that launches it."""

import dagster as dg
import psycopg
import pytest

from eventflow_assets.orchestration.jobs import retention_job
from eventflow_assets.orchestration.resources import EventFlowEndpoints
from eventflow_assets.orchestration.schedules import retention_schedule
from eventflow_assets.storage.schema import apply_schema


@pytest.fixture
def retention_env(pg_url, monkeypatch, tmp_path):
    for name in ("EVENTFLOW_RETENTION_PROGRESS_DAYS", "EVENTFLOW_RETENTION_BATCHES_DAYS",
                 "EVENTFLOW_RETENTION_REJECTED_DAYS", "EVENTFLOW_RETENTION_DELETE_ROWS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EVENTFLOW_POSTGRES_URL", pg_url)
    monkeypatch.setenv("EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")  # never contacted by this job
    monkeypatch.setenv("EVENTFLOW_HOME", str(tmp_path))
    apply_schema(pg_url)
    return pg_url


def _metadata(result) -> dict:
    (event,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_OUTPUT]
    return {k: v.value for k, v in event.step_output_data.metadata.items()}


def test_retention_job_prunes_with_the_settings_from_the_environment(retention_env, monkeypatch):
    with psycopg.connect(retention_env) as conn:
        for offset, days in enumerate([5, 3.5, 2.5, 1, 0.2]):
            conn.execute("INSERT INTO rejected_events (topic, \"partition\", \"offset\", payload, payload_bytes, "
                         "reason, rejected_at) VALUES ('user-events', 1, %s, 'x', 1, 'invalid JSON', "
                         "now() - make_interval(secs => %s))", (offset, days * 86400))
        for batch, days in enumerate([9, 8, 1]):  # 9 days old is past the default week; 8 days is kept with 10
            conn.execute("INSERT INTO stream_progress (query_name, checkpoint_id, batch_id, recorded_at, input_rows, "
                         "output_rows, late_rows, rejected_rows, duration_ms) VALUES ('orders', 'c', %s, "
                         "now() - make_interval(secs => %s), 0, 0, 0, 0, 1)", (batch, days * 86400))
    monkeypatch.setenv("EVENTFLOW_RETENTION_REJECTED_DAYS", "3")
    monkeypatch.setenv("EVENTFLOW_RETENTION_PROGRESS_DAYS", "")  # empty: the default, 7
    monkeypatch.setenv("EVENTFLOW_RETENTION_DELETE_ROWS", "1")

    result = retention_job.execute_in_process(resources={"eventflow": EventFlowEndpoints()})

    assert result.success
    with psycopg.connect(retention_env) as conn:
        assert [o for (o,) in conn.execute('SELECT "offset" FROM rejected_events ORDER BY 1')] == [2, 3, 4]
        assert [b for (b,) in conn.execute("SELECT batch_id FROM stream_progress ORDER BY 1")] == [2]
    assert _metadata(result) == {
        "deleted_stream_progress": 2, "deleted_stream_batches": 0, "deleted_rejected_events": 2,
        "keeps_days_stream_progress": 7, "keeps_days_stream_batches": 7, "keeps_days_rejected_events": 3,
        "delete_rows_per_statement": 1}


def test_a_bad_setting_fails_the_run_with_its_name_and_deletes_nothing(retention_env, monkeypatch):
    with psycopg.connect(retention_env) as conn:
        conn.execute("INSERT INTO rejected_events (topic, \"partition\", \"offset\", payload, payload_bytes, reason, "
                     "rejected_at) VALUES ('orders', 0, 0, 'x', 1, 'invalid JSON', now() - interval '400 days')")
    monkeypatch.setenv("EVENTFLOW_RETENTION_REJECTED_DAYS", "30d")

    result = retention_job.execute_in_process(resources={"eventflow": EventFlowEndpoints()}, raise_on_error=False)

    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert "EVENTFLOW_RETENTION_REJECTED_DAYS must be a whole number of days, at least 1; got '30d'" in \
        failure.step_failure_data.error.message
    with psycopg.connect(retention_env) as conn:
        assert conn.execute("SELECT count(*) FROM rejected_events").fetchone() == (1,)


def test_the_schedule_runs_the_job_hourly_and_is_on_by_default():
    assert (retention_schedule.cron_schedule, retention_schedule.execution_timezone) == ("7 * * * *", "UTC")
    assert retention_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert retention_schedule.job_name == "retention_job"
    ticks = retention_schedule.evaluate_tick(dg.build_schedule_context())
    assert [r.job_name or retention_schedule.job_name for r in ticks.run_requests] == ["retention_job"]
