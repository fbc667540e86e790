"""Partition end offsets that are right on any broker that speaks Kafka's protocol.

Some Kafka-protocol brokers answer ListOffsets(latest) with the base offset of a recent record
batch rather than the high watermark. Every Fetch response carries the true high watermark, so
we take ListOffsets as a hint, fetch once from just below it, and read the watermark librdkafka
cached from that Fetch. On Apache Kafka the hint is already exact; the fetch merely confirms it.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from eventflow_assets.errors import EventFlowError
from eventflow_assets.ingestion.kafka_clients import consumer


def partition_ranges(kafka_config: dict, partitions: list[tuple[str, int]],
                     timeout: float = 15.0) -> dict[tuple[str, int], tuple[int, int]]:
    """{(topic, partition): (earliest offset, end offset)} where end = offset of the next record."""
    if not partitions:
        return {}
    c = consumer({**kafka_config, "group.id": f"eventflow-offsets-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "fetch.wait.max.ms": 10, "isolation.level": "read_uncommitted"})
    try:
        hints = {}
        for topic, part in partitions:
            try:
                hints[(topic, part)] = c.get_watermark_offsets(TopicPartition(topic, part), timeout=timeout)
            except KafkaException as exc:
                raise EventFlowError(f"cannot read offsets of {topic}[{part}]: {exc.args[0].str()}") from None
        c.assign([TopicPartition(t, p, max(lo, hi - 1)) for (t, p), (lo, hi) in hints.items()])
        pending = set(hints)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            msg = c.poll(0.2)
            if msg is None:
                continue
            if msg.error() and msg.error().code() != KafkaError._PARTITION_EOF:
                raise EventFlowError(f"fetch from {msg.topic()}[{msg.partition()}] failed: {msg.error().str()}")
            key = (msg.topic(), msg.partition())
            if key in pending:
                pending.discard(key)
                c.pause([TopicPartition(*key)])
        if pending:
            raise EventFlowError(f"no fetch answer within {timeout:.0f}s for {sorted(pending)}")
        result = {}
        for (topic, part), (lo, _) in hints.items():
            _, high = c.get_watermark_offsets(TopicPartition(topic, part), cached=True)
            result[(topic, part)] = (lo, high)
        return result
    finally:
        c.close()


def end_offsets(kafka_config: dict, partitions: list[tuple[str, int]], timeout: float = 15.0) -> dict:
    return {tp: hi for tp, (_, hi) in partition_ranges(kafka_config, partitions, timeout).items()}


def topic_ids(kafka_config: dict, topics: list[str], timeout: float = 60.0) -> dict[str, str]:
    """{topic: the id Kafka gave it at creation}; a topic deleted and created again has a new one.

    A topic that does not exist raises :class:`TopicMissing`; any other failure within
    ``timeout`` (a broker restarting for longer) an :class:`EventFlowError`.
    """
    from confluent_kafka import TopicCollection

    from eventflow_assets.ingestion.kafka_clients import admin_client

    admin = admin_client(kafka_config)  # kept referenced until the answers are in
    futures = admin.describe_topics(TopicCollection(list(topics)), request_timeout=timeout)
    ids = {}
    for topic, future in futures.items():
        try:
            ids[topic] = str(future.result(timeout + 5).topic_id)
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise TopicMissing(f"topic {topic} does not exist") from None
            raise EventFlowError(f"cannot describe topic {topic}: {exc.args[0].str()}") from None
    return ids


class TopicMissing(EventFlowError):
    pass
