"""`eventflow produce` against a real broker: exact counts, keys, Java-compatible partitions."""

import json
import os
import subprocess
import sys
from collections import Counter, deque

import pytest

from eventflow_assets.ingestion.generator import EventGenerator
from eventflow_assets.ingestion.offsets import end_offsets
from eventflow_assets.ingestion.producer import ProduceStats, produce
from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.local.processes import free_port
from eventflow_assets_tests.helpers import contract_violation, java_partition, read_all

TOPICS = ("user-events", "product-view", "orders")


def run_cli(*args, env_extra=None, timeout=120):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTFLOW_")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "eventflow_assets.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.fixture
def cli_env(kafka_broker, pg_url, tmp_path):
    return {"EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
            "EVENTFLOW_POSTGRES_URL": pg_url, "EVENTFLOW_HOME": str(tmp_path / "home")}


def test_produce_count_lands_exactly_n_records_keyed_and_partitioned_like_java(kafka_broker, cli_env):
    n = 30_000
    result = run_cli("produce", "--count", str(n), "--seed", "11", "--quiet", env_extra=cli_env)
    assert result.returncode == 0, result.stderr
    assert f"{n:,} events acknowledged" in result.stdout

    records = read_all(kafka_broker.bootstrap_servers, TOPICS)
    assert len(records) == n
    per_topic = Counter(r.topic() for r in records)
    for topic, p in (("user-events", 0.4), ("product-view", 0.4), ("orders", 0.2)):
        assert abs(per_topic[topic] - n * p) <= 5 * (n * p * (1 - p)) ** 0.5
    for r in records:
        assert r.key() == json.loads(r.value())["userId"].encode()
        assert r.partition() == java_partition(r.key(), 3)
        assert contract_violation(r.topic(), r.value()) is None
    # The end offsets we report agree with what is really there.
    ends = end_offsets({"bootstrap.servers": kafka_broker.bootstrap_servers},
                       [(t, p) for t in TOPICS for p in range(3)])
    assert ends == dict(Counter((r.topic(), r.partition()) for r in records))


def test_produce_same_seed_publishes_same_ids(kafka_config):
    provision_topics(kafka_config)
    produce(kafka_config, EventGenerator(seed=5), count=500)
    produce(kafka_config, EventGenerator(seed=5), count=500)
    values = [json.loads(r.value()) for r in read_all(kafka_config["bootstrap.servers"], TOPICS)]
    ids = Counter(v.get("eventId") or v["orderId"] for v in values)
    assert len(ids) == 500 and set(ids.values()) == {2}


def test_rate_limits_throughput(kafka_config):
    provision_topics(kafka_config)
    stats = produce(kafka_config, EventGenerator(seed=1), duration=2.0, rate=200)
    assert stats.failed == 0
    assert 300 <= stats.delivered <= 402  # 200/s for 2 s, +1 for the event at t=0


def test_unreachable_broker_is_a_clear_error(cli_env):
    gone = f"127.0.0.1:{free_port()}"  # nothing listens there: topics cannot be provisioned
    result = run_cli("produce", "--count", "10", "--quiet", timeout=60,
                     env_extra={**cli_env, "EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS": gone})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"eventflow: error: cannot reach Kafka at {gone} within 15s (Failed to get metadata: Local: Broker transport failure); check "
        "EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS, or start the local services with `eventflow services`"]


def test_undeliverable_records_are_reported_as_failed(kafka_config):
    provision_topics(kafka_config)
    # A topic that does not exist and may not be auto-created: every delivery fails.
    gen = EventGenerator(seed=1)
    real_next = gen.next_event
    gen.next_event = lambda: ("no-such-topic", *real_next()[1:])
    stats = produce(kafka_config, gen, count=5, flush_timeout=30,
                    **{"message.timeout.ms": 3000, "allow.auto.create.topics": False})
    assert stats.delivered == 0
    assert stats.failed == 5
    assert sum(stats.errors.values()) == 5


def test_error_rate_and_ack_latency_per_topic(kafka_config):
    """Every 4th event goes to a topic that does not exist: exactly those fail, and only the
    acknowledged ones have a latency."""
    provision_topics(kafka_config)
    gen = EventGenerator(seed=2)
    real_next, n = gen.next_event, [0]

    def next_event():
        n[0] += 1
        topic, key, value = real_next()
        return ("no-such-topic" if n[0] % 4 == 0 else topic), key, value

    gen.next_event = next_event
    stats = produce(kafka_config, gen, count=40, flush_timeout=30,
                    **{"message.timeout.ms": 3000, "allow.auto.create.topics": False})
    assert (stats.sent, stats.delivered, stats.failed) == (40, 30, 10)
    assert stats.error_rate() == 0.25
    assert stats.sent_by_topic["no-such-topic"] == 10
    assert stats.error_rate("no-such-topic") == 1.0 and stats.ack_latency_ms(0.5, "no-such-topic") is None
    real = [t for t in stats.sent_by_topic if t != "no-such-topic"]
    assert {t: stats.error_rate(t) for t in real} == {t: 0.0 for t in real}
    assert sum(len(stats.ack_latencies[t]) for t in real) == 30
    p50, p95, top = (stats.ack_latency_ms(q) for q in (0.5, 0.95, 1.0))
    assert 0 < p50 <= p95 <= top < stats.elapsed * 1000


def test_ack_latency_percentiles_are_nearest_rank():
    stats = ProduceStats(ack_latencies={"orders": deque([0.004, 0.001, 0.003]), "user-events": deque([0.002])})
    assert [stats.ack_latency_ms(q) for q in (0.25, 0.5, 0.95, 1.0)] == [1.0, 2.0, 4.0, 4.0]
    assert stats.ack_latency_ms(0.5, "orders") == 3.0
    assert ProduceStats().ack_latency_ms(0.5) is None and ProduceStats().error_rate() == 0.0


def test_anomaly_options_reach_the_topics(kafka_broker, cli_env):
    result = run_cli("produce", "--count", "4000", "--seed", "3", "--malformed", "0.25", "--quiet",
                     env_extra=cli_env)
    assert result.returncode == 0, result.stderr
    records = read_all(kafka_broker.bootstrap_servers, TOPICS)
    bad = sum(contract_violation(r.topic(), r.value()) is not None for r in records)
    assert len(records) == 4000
    assert abs(bad - 1000) <= 5 * (4000 * 0.25 * 0.75) ** 0.5
