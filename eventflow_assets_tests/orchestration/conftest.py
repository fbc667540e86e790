"""Real services for the Dagster layer: the resources read EVENTFLOW_* like any entry point."""

import pytest

from eventflow_assets.storage.schema import apply_schema


@pytest.fixture
def eventflow_env(kafka_broker, pg_url, tmp_path, monkeypatch) -> dict:
    """EVENTFLOW_* pointing at this test's broker and database, schema applied."""
    for name in ("EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS", "EVENTFLOW_POSTGRES_URL", "EVENTFLOW_HOME"):
        monkeypatch.delenv(name, raising=False)
    env = {"EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
           "EVENTFLOW_POSTGRES_URL": pg_url, "EVENTFLOW_HOME": str(tmp_path / "home")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    apply_schema(pg_url)
    return env
