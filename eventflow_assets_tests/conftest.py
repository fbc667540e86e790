"""Real services for the suite: one embedded PostgreSQL per session (a fresh database per test)
and a fresh embedded Kafka broker per test that asks for one (it starts in ~0.1 s)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from eventflow_assets.local.kafka_broker import EmbeddedKafka
from eventflow_assets.local.postgres_server import EmbeddedPostgres
from eventflow_assets.local.processes import free_port


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    server = EmbeddedPostgres(tmp_path_factory.mktemp("postgres"), free_port())
    server.start()
    yield server
    server.stop()


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
def kafka_broker(tmp_path):
    broker = EmbeddedKafka(tmp_path / "kafka", free_port())
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def kafka_config(kafka_broker) -> dict:
    return {"bootstrap.servers": kafka_broker.bootstrap_servers}
