"""Scaling out under a stream (docs/streaming.md, "Parallelism"): partitions added to the topics
are read from their first record, and a checkpoint keeps the shuffle partitions of its first start."""

from __future__ import annotations

import json

import psycopg
from confluent_kafka.admin import AdminClient, NewPartitions

from drills.faults import StreamThread, all_partitions, committed_ends, covers, wait_until
from eventflow_assets.ingestion.generator import EventGenerator
from eventflow_assets.ingestion.offsets import end_offsets
from eventflow_assets.ingestion.producer import produce
from eventflow_assets.processing.queries import StreamConfig
from eventflow_assets_tests.helpers import read_all
from eventflow_assets_tests.processing.expected import actual_tables, expected_tables
from eventflow_assets_tests.processing.test_streaming import T0, TOPICS, run_available_now, ticking_clock

SHUFFLE = "spark.sql.shuffle.partitions"
STATEFUL = ("orders", "product-view")  # the queries with a state store (dedup, windows)


def _add_partitions(cfg: dict, count: int) -> None:
    admin = AdminClient(cfg)
    for future in admin.create_partitions([NewPartitions(t, count) for t in TOPICS]).values():
        future.result(30)
    wait_until(lambda: all(len(admin.list_topics(timeout=10).topics[t].partitions) == count for t in TOPICS),
               30, f"the brokers to list {count} partitions")


def _latest_batch(query_checkpoint) -> tuple[int, dict]:
    """(id, the SQL conf its offsets log entry records) of the query's latest batch."""
    batch = max(int(p.name) for p in (query_checkpoint / "offsets").iterdir() if p.name.isdigit())
    return batch, json.loads((query_checkpoint / "offsets" / str(batch)).read_text().splitlines()[1])["conf"]


def _state_partitions(query_checkpoint) -> set[str]:
    return {p.name for p in (query_checkpoint / "state").glob("*/*") if p.is_dir() and p.name.isdigit()}


def test_added_partitions_are_read_and_the_checkpoint_keeps_its_shuffle_partitions(
        spark, endpoints, kafka_broker, pg_url, tmp_path):
    cfg = {"bootstrap.servers": kafka_broker.bootstrap_servers}
    checkpoints = tmp_path / "chk"
    assert spark.conf.get(SHUFFLE) == "2"
    assert produce(cfg, EventGenerator(seed=91, clock=ticking_clock(T0, 0.2)), count=1500).failed == 0
    first = end_offsets(cfg, all_partitions(3))

    # 1. A running stream on 3 partitions a topic; 3 more are added and get records.
    stream = StreamThread(spark, endpoints, checkpoints, StreamConfig(trigger_seconds=1))
    stream.start()
    try:
        wait_until(lambda: covers(committed_ends(checkpoints), first), 300, "the stream to read 3 partitions", stream)
        _add_partitions(cfg, 6)
        assert produce(cfg, EventGenerator(seed=92, clock=ticking_clock(T0 + 600, 0.2)), count=1500).failed == 0
        grown = end_offsets(cfg, all_partitions(6))
        assert all(grown[(t, p)] > 0 for t in TOPICS for p in (3, 4, 5))  # the premise: records in new partitions
        wait_until(lambda: covers(committed_ends(checkpoints), grown), 300, "the stream to read 6 partitions", stream)
    finally:
        stream.stop()
    with psycopg.connect(pg_url) as conn:
        assert actual_tables(conn) == expected_tables(read_all(kafka_broker.bootstrap_servers, TOPICS, partitions=6))

    # 2. Started again from its checkpoint with another shuffle count: Spark keeps the checkpoint's.
    assert produce(cfg, EventGenerator(seed=93, clock=ticking_clock(T0 + 1200, 0.2)), count=300).failed == 0
    before = {query: _latest_batch(checkpoints / query)[0] for query in STATEFUL}
    spark.conf.set(SHUFFLE, "5")
    try:
        run_available_now(spark, endpoints, checkpoints)
    finally:
        spark.conf.set(SHUFFLE, "2")
    for query in STATEFUL:
        batch, conf = _latest_batch(checkpoints / query)
        assert batch > before[query] and conf[SHUFFLE] == "2"  # a batch run after the restart
        assert _state_partitions(checkpoints / query) == {"0", "1"}
    with psycopg.connect(pg_url) as conn:
        assert actual_tables(conn) == expected_tables(read_all(kafka_broker.bootstrap_servers, TOPICS, partitions=6))
