"""The Dagster instance `eventflow up` writes: no secret in the file, and it works on real PostgreSQL."""

import uuid

import dagster as dg
import yaml

from eventflow_assets.local.dagster_instance import cancel_leftover_runs, instance_env, open_instance, write_instance


def test_dagster_yaml_refers_to_the_environment_and_holds_no_secret(tmp_path):
    url = "postgresql://ef%40user:s3cr%2Ft@db.internal:6543/dagster?sslmode=require"
    text = write_instance(tmp_path, url).read_text()
    assert "s3cr" not in text and "ef@user" not in text and "db.internal" not in text
    config = yaml.safe_load(text)
    assert config["storage"]["postgres"]["postgres_db"] == {
        "username": {"env": "DAGSTER_PG_USERNAME"}, "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": {"env": "DAGSTER_PG_HOST"}, "db_name": {"env": "DAGSTER_PG_DB"},
        "port": {"env": "DAGSTER_PG_PORT"}, "scheme": "postgresql+psycopg2", "params": {"sslmode": "require"}}
    assert config["run_coordinator"] == {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"}
    assert config["concurrency"] == {
        "runs": {"max_concurrent_runs": 4, "tag_concurrency_limits": [{"key": "eventflow/stream", "limit": 1}]},
        "pools": {"granularity": "run", "default_limit": 1}}
    assert config["run_monitoring"] == {"enabled": True}
    assert config["run_retries"] == {"enabled": True}
    assert config["auto_materialize"] == {"enabled": True, "use_sensors": True}
    assert config["freshness"] == {"enabled": True}
    assert config["telemetry"] == {"enabled": False}
    assert instance_env(tmp_path, url) == {
        "DAGSTER_HOME": str(tmp_path), "DAGSTER_PG_USERNAME": "ef@user", "DAGSTER_PG_PASSWORD": "s3cr/t",
        "DAGSTER_PG_HOST": "db.internal", "DAGSTER_PG_PORT": "6543", "DAGSTER_PG_DB": "dagster"}


def test_instance_stores_runs_in_postgres_and_cancels_leftovers(tmp_path, pg_url, monkeypatch):
    home = tmp_path / "dagster"
    write_instance(home, pg_url)
    for name, value in instance_env(home, pg_url).items():
        monkeypatch.setenv(name, value)
    instance = open_instance(home, {})
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        left = instance.run_storage.add_run(dg.DagsterRun(job_name="streaming_job", run_id=str(uuid.uuid4())))
        instance.report_run_canceling(left)
        done = instance.run_storage.add_run(dg.DagsterRun(job_name="producer_job", run_id=str(uuid.uuid4()),
                                                          status=dg.DagsterRunStatus.SUCCESS))
        assert cancel_leftover_runs(instance) == [left.run_id]
        assert instance.get_run_by_id(left.run_id).status == dg.DagsterRunStatus.CANCELED
        assert instance.get_run_by_id(done.run_id).status == dg.DagsterRunStatus.SUCCESS
        assert cancel_leftover_runs(instance) == []
        # Sensor and schedule ticks are purged by the daemon after these many days.
        from dagster._core.definitions.run_request import InstigatorType
        from dagster._core.scheduler.instigation import TickStatus

        assert dict(instance.get_tick_retention_settings(InstigatorType.SENSOR)) == {
            TickStatus.SKIPPED: 7, TickStatus.FAILURE: 30, TickStatus.SUCCESS: 30, TickStatus.STARTED: -1}
        assert instance.get_tick_retention_settings(InstigatorType.SCHEDULE)[TickStatus.SKIPPED] == 90
        # The daemon runs the automation condition sensors and evaluates freshness policies.
        assert instance.auto_materialize_use_sensors and instance.freshness_enabled
        assert {"ASSET", "FRESHNESS_DAEMON"} <= set(instance.get_required_daemon_types())
    finally:
        instance.dispose()
