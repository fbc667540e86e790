"""Checkpoints at a URI (EVENTFLOW_CHECKPOINT_LOCATION may be any location Spark's file systems
understand): the queries keep them under it, the sinks' ledger takes its ids from the queries, and
a second run resumes from them."""

from __future__ import annotations

import json

import psycopg

from eventflow_assets.ingestion.generator import EventGenerator
from eventflow_assets.ingestion.producer import produce
from eventflow_assets.processing.queries import QUERY_NAMES, query_checkpoint
from eventflow_assets_tests.helpers import read_all
from eventflow_assets_tests.processing.expected import actual_tables, expected_tables
from eventflow_assets_tests.processing.test_streaming import T0, TOPICS, run_available_now, ticking_clock


def test_query_checkpoints_are_joined_as_uris_not_local_paths():
    assert query_checkpoint("hdfs://namenode:8020/eventflow/chk", "orders") == \
        "hdfs://namenode:8020/eventflow/chk/orders"
    assert query_checkpoint("s3a://bucket/chk/", "product-view") == "s3a://bucket/chk/product-view"
    assert query_checkpoint("file:///var/lib/eventflow/checkpoints", "user-events") == \
        "file:///var/lib/eventflow/checkpoints/user-events"
    assert query_checkpoint("/var/lib/eventflow/checkpoints", "orders") == "/var/lib/eventflow/checkpoints/orders"


def _ledger_ids(pg_url) -> dict[str, set[str]]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT query_name, checkpoint_id FROM stream_batches").fetchall()
    ids: dict[str, set[str]] = {}
    for query, checkpoint in rows:
        ids.setdefault(query, set()).add(checkpoint)
    return ids


def test_a_file_uri_location_holds_the_checkpoints_and_the_stream_resumes_from_it(
        spark, endpoints, kafka_broker, pg_url, tmp_path):
    cfg = {"bootstrap.servers": kafka_broker.bootstrap_servers}
    local = tmp_path / "checkpoints"
    location = local.as_uri()  # file:///...
    assert produce(cfg, EventGenerator(seed=41, clock=ticking_clock(T0, 0.5)), count=1500).failed == 0
    run_available_now(spark, endpoints, location)
    assert produce(cfg, EventGenerator(seed=42, clock=ticking_clock(T0 + 900, 0.5)), count=500).failed == 0
    run_available_now(spark, endpoints, location)

    expected = expected_tables(read_all(kafka_broker.bootstrap_servers, TOPICS))
    with psycopg.connect(pg_url) as conn:
        actual = actual_tables(conn)
    for table in ("orders_raw", "revenue", "funnel", "rejected"):
        assert actual[table] == expected[table], table
    assert len(expected["orders_raw"]) > 300

    # Each query's checkpoint is under the URI, and both runs wrote the ledger under the one id
    # Spark keeps in it (the second run resumed the first's checkpoint: no new id).
    on_disk = {q: json.loads((local / q / "metadata").read_text().splitlines()[0])["id"] for q in QUERY_NAMES}
    assert _ledger_ids(pg_url) == {q: {on_disk[q]} for q in QUERY_NAMES}
    for query in QUERY_NAMES:
        assert sorted(p.name for p in (local / query / "commits").iterdir() if not p.name.startswith(".")) == \
            sorted(p.name for p in (local / query / "offsets").iterdir() if not p.name.startswith("."))
