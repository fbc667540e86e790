"""Real services for the suite: one embedded PostgreSQL per session (a fresh database per test)
and one embedded Apache Kafka per session, whose topics are deleted before each test that asks
for it (a broker takes a few seconds to start; deleting topics takes milliseconds). A test that
stops or breaks its broker asks for ``own_kafka_broker`` instead."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest

from eventflow_assets.local.kafka_broker import EmbeddedKafka
from eventflow_assets.local.postgres_server import EmbeddedPostgres
from eventflow_assets.local.processes import free_port
from eventflow_assets_tests.helpers import delete_all_topics


@pytest.fixture(scope="session")
def postgres_server():
    # Not under pytest's basetemp: every pytest session chmods that tree to 0700, which would
    # lock out the unprivileged user PostgreSQL runs as when the suite runs as root.
    state = Path(tempfile.mkdtemp(prefix="eventflow-test-postgres-"))
    server = EmbeddedPostgres(state, free_port())
    server.start()
    yield server
    server.stop()
    shutil.rmtree(state, ignore_errors=True)


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


@pytest.fixture(scope="session")
def kafka_cluster():
    state = Path(tempfile.mkdtemp(prefix="eventflow-test-kafka-"))
    broker = EmbeddedKafka(state, free_port())
    broker.start()
    yield broker
    broker.stop()
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def kafka_broker(kafka_cluster):
    """The session's broker with no topics (the previous test's are deleted)."""
    delete_all_topics(kafka_cluster.client_config())
    return kafka_cluster


@pytest.fixture
def own_kafka_broker(tmp_path):
    """A broker of this test's own, for tests that stop or restart it."""
    broker = EmbeddedKafka(tmp_path / "kafka", free_port())
    broker.start()
    yield broker
    broker.stop()


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
