"""Topics deleted and created again under a stream's checkpoint (failOnDataLoss, docs/streaming.md).

Spark's connector compares offsets only: it notices a recreated topic while the new topic's
offsets are below the checkpoint's, and reads on silently once they have passed them, skipping
the new topic's first records. The sinks compare Kafka's topic ids instead. Whatever happens, the
tables hold exactly what the old topics gave them until someone decides.
"""

from __future__ import annotations

import pytest

from drills.faults import StreamThread, committed_ends, covers, wait_until
from eventflow_assets.ingestion.generator import EventGenerator
from eventflow_assets.ingestion.offsets import end_offsets
from eventflow_assets.ingestion.producer import produce
from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.processing.queries import StreamConfig
from eventflow_assets.processing.runner import StreamingFailed, run_streaming
from eventflow_assets_tests.helpers import delete_all_topics, read_all
from eventflow_assets_tests.processing.expected import actual_tables, expected_tables
from eventflow_assets_tests.processing.test_streaming import T0, TOPICS, ticking_clock

PARTITIONS = [(t, p) for t in TOPICS for p in range(3)]


def _tables(pg_url) -> dict:
    import psycopg

    with psycopg.connect(pg_url) as conn:
        return actual_tables(conn)


def test_topics_recreated_under_the_stream_stop_it_and_leave_the_tables_exact(
        spark, endpoints, kafka_broker, pg_url, tmp_path):
    cfg = {"bootstrap.servers": kafka_broker.bootstrap_servers}
    assert produce(cfg, EventGenerator(seed=71, clock=ticking_clock(T0, 0.1)), count=3000).failed == 0
    old = read_all(kafka_broker.bootstrap_servers, TOPICS)
    old_ends = end_offsets(cfg, PARTITIONS)
    checkpoints = tmp_path / "chk"

    # 1. Under the running stream: deleted, created again, and filled with twice as many records.
    stream = StreamThread(spark, endpoints, checkpoints, StreamConfig(trigger_seconds=1))
    stream.start()
    try:
        wait_until(lambda: covers(committed_ends(checkpoints), old_ends), 300, "the stream to read the topics", stream)
        delete_all_topics(cfg)
        provision_topics(cfg)
        assert produce(cfg, EventGenerator(seed=72, clock=ticking_clock(T0 + 3600, 0.1)), count=6000).failed == 0
        wait_until(lambda: stream.failure() is not None, 300, "the stream to stop")
    finally:
        stream.stop(check=False)
    assert isinstance(stream.error, StreamingFailed), stream.failure()
    first = str(stream.error)  # Spark's own data-loss message, or the sinks' (then the same as in 2.)
    assert ("deleted" in first or "data may have been missed" in first) and "Python Proxy" not in first, first
    assert _tables(pg_url) == expected_tables(old)  # nothing of the new topics, nothing lost of the old

    # 2. Started again on the same checkpoint: the new topics' offsets have passed the checkpoint's,
    # where Spark's connector alone would read on from them without a word.
    new_ends = end_offsets(cfg, PARTITIONS)
    assert all(new_ends[tp] > old_ends[tp] for tp in PARTITIONS)  # the premise
    with pytest.raises(StreamingFailed) as failure:
        run_streaming(spark, endpoints, checkpoints, StreamConfig(available_now=True))
    message = str(failure.value)
    assert "was deleted and created again under this stream's checkpoint" in message, message
    assert "--no-fail-on-data-loss" in message and "eventflow reset" in message
    assert _tables(pg_url) == expected_tables(old)

    # 3. --no-fail-on-data-loss: the loss is accepted; the stream goes on from the checkpoint's offsets
    # (the new topics' records below them are skipped: what the option means).
    run_streaming(spark, endpoints, checkpoints, StreamConfig(available_now=True, fail_on_data_loss=False))
    kept = [r for r in read_all(kafka_broker.bootstrap_servers, TOPICS)
            if r.offset() >= old_ends[(r.topic(), r.partition())]]
    assert _tables(pg_url) == expected_tables(old + kept)
