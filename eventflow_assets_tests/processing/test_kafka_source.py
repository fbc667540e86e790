"""The eventflow_kafka streaming source against a real Apache Kafka broker and a real SparkSession.

Expectations come from what the tests produced (a seeded generator with a frozen clock replays
the exact records), never from the source under test.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict

import pytest
from pyspark.errors import StreamingQueryException
from pyspark.sql.types import BinaryType, IntegerType, LongType, StringType, StructField, StructType, TimestampType

from eventflow_assets.ingestion.events import TOPIC_NAMES
from eventflow_assets.ingestion.generator import EventGenerator
from eventflow_assets.ingestion.offsets import end_offsets
from eventflow_assets.ingestion.producer import produce
from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.processing.kafka_source import rate_limit
from eventflow_assets_tests.helpers import delete_all_topics

FROZEN_CLOCK = 1_790_000_000.0
TOPICS = ",".join(TOPIC_NAMES)


def generator(seed: int) -> EventGenerator:
    return EventGenerator(seed=seed, clock=lambda: FROZEN_CLOCK)


def produce_events(kafka_config: dict, seed: int, count: int) -> Counter:
    """Publish ``count`` events; returns the multiset of (topic, key, value) that was sent."""
    stats = produce(kafka_config, generator(seed), count=count)
    assert (stats.delivered, stats.failed) == (count, 0)
    replay = generator(seed)
    return Counter(replay.next_event() for _ in range(count))


def kafka_stream(spark, bootstrap: str, **options):
    reader = spark.readStream.format("eventflow_kafka").option("kafka.bootstrap.servers", bootstrap)
    for key, value in {"subscribe": TOPICS, "startingOffsets": "earliest", **options}.items():
        reader = reader.option(key, value)
    return reader.load()


COLUMNS = ("topic", "partition", "offset", "key", "value", "unix_millis(timestamp) AS ts", "timestampType")


class Collector:
    """A foreachBatch sink keeping every row (unlike the memory sink, it survives restarts)."""

    def __init__(self):
        self.batches: list[list] = []

    def __call__(self, batch_df, batch_id: int) -> None:
        self.batches.append(batch_df.selectExpr(*COLUMNS).collect())

    @property
    def rows(self) -> list:
        return [row for batch in self.batches for row in batch]


def run_available_now(df, checkpoint) -> tuple[list, list]:
    """Run one Trigger.AvailableNow query: (rows, row count of each batch)."""
    sink = Collector()
    query = (df.writeStream.foreachBatch(sink).option("checkpointLocation", str(checkpoint))
             .trigger(availableNow=True).start())
    try:
        query.awaitTermination()
    finally:
        query.stop()
    return sink.rows, [len(b) for b in sink.batches]


def records(rows) -> Counter:
    return Counter((r.topic, bytes(r.key), bytes(r.value)) for r in rows)


def assert_contiguous_from_zero(rows) -> dict:
    """Each partition's offsets are exactly 0..n-1, each once; returns {(topic, partition): n}."""
    offsets = defaultdict(list)
    for r in rows:
        offsets[(r.topic, r.partition)].append(r.offset)
    for tp, found in offsets.items():
        assert sorted(found) == list(range(len(found))), tp
    return {tp: len(found) for tp, found in offsets.items()}


def test_reads_50k_records_exactly_once(spark, kafka_config, tmp_path):
    provision_topics(kafka_config)
    before_ms = int(time.time() * 1000)
    produced = produce_events(kafka_config, seed=11, count=50_000)
    after_ms = int(time.time() * 1000) + 1

    started = time.monotonic()
    rows, batches = run_available_now(kafka_stream(spark, kafka_config["bootstrap.servers"]), tmp_path / "ckpt")
    elapsed = time.monotonic() - started

    assert len(rows) == 50_000 and sum(batches) == 50_000
    assert records(rows) == produced
    counts = assert_contiguous_from_zero(rows)
    assert len(counts) == 9
    assert all(before_ms <= r.ts <= after_ms and r.timestampType == 0 for r in rows)
    print(f"50,000 records through availableNow in {elapsed:.1f}s")


def test_restart_resumes_from_checkpoint(spark, kafka_config, tmp_path):
    provision_topics(kafka_config)
    bootstrap = kafka_config["bootstrap.servers"]
    first = produce_events(kafka_config, seed=21, count=4000)
    rows1, _ = run_available_now(kafka_stream(spark, bootstrap), tmp_path / "ckpt")
    second = produce_events(kafka_config, seed=22, count=3000)
    rows2, _ = run_available_now(kafka_stream(spark, bootstrap), tmp_path / "ckpt")

    assert records(rows1) == first
    assert records(rows2) == second
    assert sum(assert_contiguous_from_zero(rows1 + rows2).values()) == 7000


def test_max_offsets_per_trigger_splits_available_now(spark, kafka_config, tmp_path):
    provision_topics(kafka_config)
    produced = produce_events(kafka_config, seed=31, count=4500)
    df = kafka_stream(spark, kafka_config["bootstrap.servers"], maxOffsetsPerTrigger="1000")
    rows, batches = run_available_now(df, tmp_path / "ckpt")

    assert batches == [1000, 1000, 1000, 1000, 500]
    assert records(rows) == produced
    assert_contiguous_from_zero(rows)


def test_latest_skips_exactly_the_existing_records(spark, kafka_config, tmp_path):
    provision_topics(kafka_config)
    produce_events(kafka_config, seed=41, count=20_000)  # batched, as a real producer sends
    df = kafka_stream(spark, kafka_config["bootstrap.servers"], startingOffsets="latest")
    sink = Collector()
    query = df.writeStream.foreachBatch(sink).option("checkpointLocation", str(tmp_path / "ckpt")).start()
    try:
        query.processAllAvailable()  # the initial (latest) offsets are fixed now
        assert sink.rows == []
        fresh = produce_events(kafka_config, seed=42, count=100)
        query.processAllAvailable()
    finally:
        query.stop()
    assert records(sink.rows) == fresh


def test_starting_offsets_json(spark, kafka_config, tmp_path):
    provision_topics(kafka_config)
    produce_events(kafka_config, seed=51, count=3000)
    ends = end_offsets(kafka_config, [("orders", p) for p in range(3)])
    df = kafka_stream(spark, kafka_config["bootstrap.servers"], subscribe="orders",
                      startingOffsets='{"orders": {"0": -2, "1": -1, "2": 10}}')
    rows, _ = run_available_now(df, tmp_path / "ckpt")

    by_partition = defaultdict(set)
    for r in rows:
        by_partition[r.partition].add(r.offset)
    assert by_partition[0] == set(range(ends[("orders", 0)]))
    assert 1 not in by_partition
    assert by_partition[2] == set(range(10, ends[("orders", 2)]))


def test_data_loss_when_topics_are_recreated(spark, kafka_config, tmp_path):
    """Topics deleted and recreated under the stream: offsets restart below the checkpoint."""
    bootstrap = kafka_config["bootstrap.servers"]
    provision_topics(kafka_config)
    produce_events(kafka_config, seed=61, count=3000)
    rows, _ = run_available_now(kafka_stream(spark, bootstrap), tmp_path / "ckpt")
    old_ends = assert_contiguous_from_zero(rows)

    delete_all_topics(kafka_config)
    provision_topics(kafka_config)
    fresh = produce_events(kafka_config, seed=62, count=300)
    new_ends = end_offsets(kafka_config, sorted(old_ends))
    assert all(new_ends[tp] < old_ends[tp] for tp in old_ends)  # the premise of the test

    with pytest.raises(StreamingQueryException) as failure:
        run_available_now(kafka_stream(spark, bootstrap), tmp_path / "ckpt")
    message = str(failure.value)
    assert f"orders partition 0: the checkpoint is at offset {old_ends[('orders', 0)]}" in message
    assert f"[0, {new_ends[('orders', 0)]})" in message
    assert "failOnDataLoss=false" in message and "new checkpoint" in message

    rows, _ = run_available_now(kafka_stream(spark, bootstrap, failOnDataLoss="false"), tmp_path / "ckpt")
    assert records(rows) == fresh
    assert assert_contiguous_from_zero(rows) == {tp: n for tp, n in new_ends.items() if n}


def test_schema_is_the_builtin_kafka_sources(spark):
    df = kafka_stream(spark, "127.0.0.1:1")  # load() does not connect
    assert df.schema == StructType([
        StructField("key", BinaryType()),
        StructField("value", BinaryType()),
        StructField("topic", StringType()),
        StructField("partition", IntegerType()),
        StructField("offset", LongType()),
        StructField("timestamp", TimestampType()),
        StructField("timestampType", IntegerType()),
    ])
    assert df.isStreaming


def test_missing_bootstrap_servers_is_a_clear_error(spark):
    with pytest.raises(Exception, match="needs option 'kafka.bootstrap.servers'"):
        spark.readStream.format("eventflow_kafka").option("subscribe", "orders").load()


def test_missing_topic_is_a_clear_error(spark, kafka_config, tmp_path):
    provision_topics(kafka_config)
    df = kafka_stream(spark, kafka_config["bootstrap.servers"], subscribe="orders,no-such-topic")
    with pytest.raises(StreamingQueryException, match=r"subscribed topic\(s\) \['no-such-topic'\] do not exist"):
        run_available_now(df, tmp_path / "ckpt")


def test_rate_limit_is_proportional_to_lag_and_exact():
    begin = {("t", 0): 0, ("t", 1): 100, ("t", 2): 5}
    end = {("t", 0): 3000, ("t", 1): 1100, ("t", 2): 6}
    limited = rate_limit(begin, end, 1000)
    taken = {tp: limited[tp] - begin[tp] for tp in begin}
    # Lags 3000, 1000 and 1 (4001 in all) share 1000 records: 749.81, 249.94 and 0.25 of them. Floored
    # that is 749 + 249 + 0 = 998; the 2 left over go to the largest remainders (0.94, then 0.81).
    assert taken == {("t", 0): 750, ("t", 1): 250, ("t", 2): 0}
    assert rate_limit(begin, end, 10_000) == end


def test_partitions_plan_new_and_restarted_partitions_from_earliest():
    from eventflow_assets.processing.kafka_source import (
        DataLossError,
        KafkaInputPartition,
        KafkaStreamReader,
        SourceOptions,
    )

    def reader(fail: str) -> KafkaStreamReader:
        return KafkaStreamReader(SourceOptions.parse({"kafka.bootstrap.servers": "127.0.0.1:1", "subscribe": "t",
                                                      "failOnDataLoss": fail}))

    start = {"t": {"0": 5, "1": 7, "2": 90}}
    end = {"t": {"0": 9, "1": 7, "2": 4, "3": 2}}
    assert reader("false").partitions(start, end) == [
        KafkaInputPartition("t", 0, 5, 9),  # [5, 9); partition 1 has nothing new
        KafkaInputPartition("t", 2, None, 4),  # offsets restarted: from the earliest
        KafkaInputPartition("t", 3, None, 2),  # a new partition: from the earliest
    ]
    with pytest.raises(DataLossError, match="t partition 2: the batch to replay ends at offset 4"):
        reader("true").partitions(start, end)
    ranges = {("t", 0): (0, 9), ("t", 1): (3, 7), ("t", 2): (0, 4), ("t", 3): (1, 2)}
    assert reader("false")._begin_offsets({("t", 0): 5, ("t", 1): 7, ("t", 2): 90}, ranges) == \
        {("t", 0): 5, ("t", 1): 7, ("t", 2): 0, ("t", 3): 1}
