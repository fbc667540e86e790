"""Topic provisioning against a real broker: layout, configs, idempotence, mismatches."""

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from eventflow_assets.errors import EventFlowError
from eventflow_assets.ingestion.topics import TopicMismatchError, provision_topics, verify_topics

DAY_MS = 86_400_000
EXPECTED = {"user-events": 7 * DAY_MS, "product-view": 7 * DAY_MS, "orders": 30 * DAY_MS}


def _describe(config):
    admin = AdminClient(config)
    md = admin.list_topics(timeout=10)
    futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, t) for t in EXPECTED])
    configs = {r.name: f.result(10) for r, f in futures.items()}
    return {t: (len(md.topics[t].partitions), int(configs[t]["retention.ms"].value)) for t in EXPECTED}


def _create(config, topic: NewTopic) -> None:
    admin = AdminClient(config)  # keep the client alive until the future resolves
    admin.create_topics([topic])[topic.topic].result(10)


def test_creates_three_topics_with_partitions_and_retention(kafka_config):
    assert provision_topics(kafka_config) == {t: "created" for t in EXPECTED}
    assert _describe(kafka_config) == {t: (3, ms) for t, ms in EXPECTED.items()}


def test_provisioning_twice_changes_nothing(kafka_config):
    provision_topics(kafka_config)
    assert provision_topics(kafka_config) == {t: "exists" for t in EXPECTED}
    assert _describe(kafka_config) == {t: (3, ms) for t, ms in EXPECTED.items()}
    assert verify_topics(kafka_config) == []


def test_fewer_partitions_are_reported_not_accepted(kafka_config):
    _create(kafka_config, NewTopic("orders", 2, 1, config={"retention.ms": str(30 * DAY_MS)}))
    with pytest.raises(TopicMismatchError, match=r"orders: has 2 partitions, expected 3 or more; "):
        provision_topics(kafka_config)


def test_partition_count_comes_from_the_environment_and_more_is_accepted(kafka_config, monkeypatch):
    monkeypatch.setenv("EVENTFLOW_TOPIC_PARTITIONS", "6")
    assert provision_topics(kafka_config) == {t: "created" for t in EXPECTED}
    assert _describe(kafka_config) == {t: (6, ms) for t, ms in EXPECTED.items()}
    monkeypatch.delenv("EVENTFLOW_TOPIC_PARTITIONS")  # back to 3: six partitions were added to scale out
    assert verify_topics(kafka_config) == []
    assert provision_topics(kafka_config) == {t: "exists" for t in EXPECTED}
    monkeypatch.setenv("EVENTFLOW_TOPIC_PARTITIONS", "8")
    assert verify_topics(kafka_config) == [f"{t}: has 6 partitions, expected 8 or more" for t in EXPECTED]
    assert _describe(kafka_config) == {t: (6, ms) for t, ms in EXPECTED.items()}  # never altered


def test_wrong_retention_is_reported(kafka_config):
    _create(kafka_config, NewTopic("user-events", 3, 1, config={"retention.ms": "3600000"}))
    with pytest.raises(TopicMismatchError, match=r"user-events: retention.ms is 3600000, expected 604800000"):
        provision_topics(kafka_config)
    # the other two were still created, and the mismatched one left as it was
    assert _describe(kafka_config)["user-events"] == (3, 3_600_000)
    assert _describe(kafka_config)["orders"] == (3, 30 * DAY_MS)


def test_unreachable_broker_is_a_clear_error():
    from eventflow_assets.local.processes import free_port

    port = free_port()
    with pytest.raises(EventFlowError, match=rf"cannot reach Kafka at 127.0.0.1:{port} within 2s"):
        provision_topics({"bootstrap.servers": f"127.0.0.1:{port}"}, timeout=2)


def test_replication_factor_must_be_positive(kafka_config):
    with pytest.raises(EventFlowError, match="replication factor must be at least 1"):
        provision_topics(kafka_config, replication_factor=0)
