"""Fixtures of the stream's tests: the session's broker and a fresh database, provisioned."""

import pytest

from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.settings import Endpoints
from eventflow_assets.storage.schema import apply_schema


@pytest.fixture
def endpoints(kafka_broker, pg_url) -> Endpoints:
    apply_schema(pg_url)
    provision_topics({"bootstrap.servers": kafka_broker.bootstrap_servers})
    return Endpoints(kafka_broker.bootstrap_servers, pg_url, pg_url)
