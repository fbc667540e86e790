"""Real services for the suite: one embedded PostgreSQL per session (a fresh database per test)
and one embedded Apache Kafka per session, whose topics are deleted before each test that asks
for it (a broker takes a few seconds to start; deleting topics takes milliseconds). A test that
stops or breaks its broker (or database) asks for ``own_kafka_broker`` (``own_postgres``) instead."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from eventflow_assets.local.kafka_broker import EmbeddedKafka
from eventflow_assets.local.postgres_server import EmbeddedPostgres
from eventflow_assets.local.processes import free_port
from eventflow_assets.storage.schema import apply_schema
from eventflow_assets_tests.analytics import dataset
from eventflow_assets_tests.helpers import delete_all_topics

# A test that asks for one of these (directly or through another fixture) talks to a real service;
# `make test-fast` runs the others (pure logic), and those marked `services` by hand (they start
# processes of their own: `eventflow up`, `dg dev`, spark-submit...).
SERVICE_FIXTURES = {"postgres_server", "own_postgres", "kafka_cluster", "own_kafka_broker", "spark"}
# Tests without those fixtures that start services or processes of their own (seconds to minutes each).
STARTS_PROCESSES = (
    "eventflow_assets_tests/local/",  # the embedded services, `eventflow up`, `dg dev`, logs of real processes
    "eventflow_assets_tests/test_package.py",  # builds and installs the wheel
    "eventflow_assets_tests/orchestration/test_dg.py",  # the dg command
    "eventflow_assets_tests/analytics/test_replica.py",  # spark-submit
    "eventflow_assets_tests/dashboard/test_browser.py",  # Chromium
    "eventflow_assets_tests/orchestration/test_alerts.py",  # Dagster runs in a test instance
    "eventflow_assets_tests/test_cli.py::test_services_then_env_in_another_shell_then_sigterm",
    "eventflow_assets_tests/test_compose.py::test_commands",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())) or item.nodeid.startswith(STARTS_PROCESSES):
            item.add_marker(pytest.mark.services)


@contextmanager
def running(service_class, prefix: str):
    """A started embedded service in a new temporary folder, stopped and removed afterwards.

    Not under pytest's basetemp: every pytest session chmods that tree to 0700, which would lock
    out the unprivileged user PostgreSQL runs as when the suite runs as root.
    """
    state = Path(tempfile.mkdtemp(prefix=prefix))
    service = service_class(state, free_port())
    service.start()
    try:
        yield service
    finally:
        service.stop()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    with running(EmbeddedPostgres, "eventflow-test-postgres-") as server:
        yield server


@pytest.fixture
def own_postgres():
    """A PostgreSQL of this test's own, for tests that stop or restart it."""
    with running(EmbeddedPostgres, "eventflow-test-own-postgres-") as server:
        yield server


@pytest.fixture
def pg_url(postgres_server):
    """URL of a new, empty database on the session's server."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = postgres_server.url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.url(name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def loaded_url(pg_url) -> str:
    """A new database holding the analytics tests' hand-built dataset (analytics/dataset.py)."""
    apply_schema(pg_url)
    dataset.load(pg_url)
    return pg_url


@pytest.fixture(scope="session")
def kafka_cluster():
    with running(EmbeddedKafka, "eventflow-test-kafka-") as broker:
        yield broker


@pytest.fixture
def kafka_broker(kafka_cluster):
    """The session's broker with no topics (the previous test's are deleted)."""
    delete_all_topics(kafka_cluster.client_config())
    return kafka_cluster


@pytest.fixture
def own_kafka_broker():
    """A broker of this test's own, for tests that stop or restart it."""
    with running(EmbeddedKafka, "eventflow-test-own-kafka-") as broker:
        yield broker


@pytest.fixture
def kafka_config(kafka_broker) -> dict:
    return {"bootstrap.servers": kafka_broker.bootstrap_servers}


@pytest.fixture(scope="session")
def spark():
    """One SparkSession for the whole run (starting one takes ~10 s); stopped at the end."""
    from eventflow_assets.processing.spark import build_spark_session

    session = build_spark_session("eventflow-tests")
    yield session
    session.stop()
