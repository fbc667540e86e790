"""The embedded Apache Kafka beyond one plain node: three replicating brokers, and a SCRAM login
that the producer, the admin client and both Spark sources use (and a wrong password that stops
every command before it writes anything)."""

import os
import subprocess
import sys
import threading
import time

import psycopg
import pytest
from confluent_kafka.admin import ConfigResource

from drills.faults import (
    SteadyProducer,
    StreamThread,
    committed_batches,
    committed_ends,
    covers,
    table_differences,
    topic_ends,
    wait_until,
)
from eventflow_assets.errors import EventFlowError
from eventflow_assets.ingestion.events import ORDERS, TOPIC_NAMES
from eventflow_assets.ingestion.kafka_clients import admin_client, producer
from eventflow_assets.ingestion.log_dirs import CLIENT_ID, log_sizes
from eventflow_assets.ingestion.offsets import end_offsets
from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.local.kafka_broker import ScramUser
from eventflow_assets.local.processes import free_port
from eventflow_assets.local.stack import LocalStack, resolve_endpoints
from eventflow_assets.orchestration.probes import topic_storage
from eventflow_assets.processing.queries import StreamConfig, read_topics
from eventflow_assets.settings import Endpoints, Settings
from eventflow_assets.storage.schema import apply_schema
from eventflow_assets_tests.helpers import segment_bytes

ALL_PARTITIONS = [(t, p) for t in TOPIC_NAMES for p in range(3)]


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTFLOW_")}
    return {**env, **extra}


def _stream_and_producer(spark, endpoints: Endpoints, checkpoints, seed: int):
    """The stream (in this process, trigger 1 s) and a producer at 200 events/s, both running until stopped."""
    stream = StreamThread(spark, endpoints, checkpoints, StreamConfig(trigger_seconds=1))
    stream.start()
    producer = SteadyProducer(endpoints.kafka_config(), None, 200, seed)
    producer.start()
    wait_until(lambda: min(committed_batches(checkpoints).values()) >= 0, 300, "every query's first batch", stream)
    return stream, producer


def _outage(broker, node: int, checkpoints, kafka_config: dict, stream, seconds: float = 5.0) -> None:
    """kill -9 one node, keep it down for ``seconds`` while events arrive, start it again; then wait
    until the stream has read what had arrived before the kill."""
    before = topic_ends(kafka_config)
    broker.kill(node)
    time.sleep(seconds)
    broker.restart(node)  # in the main thread: a node dies with the thread that started it
    wait_until(lambda: covers(committed_ends(checkpoints), before), 300, "the stream to read past the kill", stream)


def _finish(stream, producer, kafka_config: dict, checkpoints, pg_url: str) -> None:
    try:
        stats = producer.result(120)
        ends = topic_ends(kafka_config)  # asked again while leadership settles after the restart
        wait_until(lambda: covers(committed_ends(checkpoints), ends), 300, "the stream to read every event", stream)
    finally:
        stream.stop()
    assert stats.failed == 0 and stats.delivered == stats.sent > 1000, (stats.errors, stats.sent)
    assert table_differences(kafka_config["bootstrap.servers"], pg_url) == {}  # nothing lost, nothing doubled


def _assert_replicated(stack: LocalStack, config: dict):
    """Topics created on the three nodes: every partition on all three, min.insync.replicas 2.
    Returns the admin client and the metadata read."""
    assert len(stack.endpoints.kafka_bootstrap_servers.split(",")) == 3
    assert provision_topics(config) == {t: "created" for t in TOPIC_NAMES}  # replication follows the cluster
    admin = admin_client(config)
    metadata = admin.list_topics(timeout=10)
    assert sorted(metadata.brokers) == [1, 2, 3]
    for topic in TOPIC_NAMES:
        for partition in metadata.topics[topic].partitions.values():
            assert sorted(partition.replicas) == [1, 2, 3] and sorted(partition.isrs) == [1, 2, 3]
    futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, t) for t in TOPIC_NAMES])
    for future in futures.values():
        assert future.result(10)["min.insync.replicas"].value == "2"
    return admin, metadata


@pytest.mark.drill  # 95 s; `make drill-cluster` runs the same at 200,000 events
def test_three_brokers_replicate_and_survive_one_killed_under_the_producer_and_the_stream(tmp_path, spark, pg_url):
    # PostgreSQL configured (the session's), so that only the three Kafka nodes start.
    settings = Settings.from_env({"EVENTFLOW_HOME": str(tmp_path / "home"), "EVENTFLOW_POSTGRES_URL": pg_url})
    with LocalStack(settings, free_port(), free_port(), kafka_brokers=3) as stack:
        config = stack.endpoints.kafka_config()
        admin, metadata = _assert_replicated(stack, config)

        apply_schema(pg_url)
        checkpoints = tmp_path / "chk"
        stream, producer = _stream_and_producer(spark, stack.endpoints, checkpoints, seed=11)
        leaders = {p.leader for t in TOPIC_NAMES for p in metadata.topics[t].partitions.values()}
        node = 2 if 2 in leaders else min(leaders)  # a node that leads partitions: their leadership moves
        _outage(stack.kafka, node, checkpoints, config, stream)  # acks=all goes on with 2 of 3 in sync
        wait_until(lambda: all(sorted(p.isrs) == [1, 2, 3] for t in TOPIC_NAMES
                               for p in admin.list_topics(timeout=10).topics[t].partitions.values()),
                   120, "the restarted node back in every ISR", stream)
        _finish(stream, producer, config, checkpoints, pg_url)


def test_one_broker_restarted_under_the_producer_and_the_stream(own_kafka_broker, spark, pg_url, tmp_path):
    """One node, killed and started 5 s later: the producer's retries and the stream's wait it out."""
    config = own_kafka_broker.client_config()
    provision_topics(config)
    apply_schema(pg_url)
    checkpoints = tmp_path / "chk"
    stream, producer = _stream_and_producer(spark, Endpoints(own_kafka_broker.bootstrap_servers, pg_url, pg_url),
                                            checkpoints, seed=12)
    _outage(own_kafka_broker, 1, checkpoints, config, stream)
    _finish(stream, producer, config, checkpoints, pg_url)


@pytest.fixture(scope="module")
def scram_stack(tmp_path_factory):
    home = tmp_path_factory.mktemp("scram") / "home"
    user = ScramUser("eventflow-test", "s3cret-" + os.urandom(6).hex())
    with LocalStack(Settings.from_env({"EVENTFLOW_HOME": str(home)}), free_port(), free_port(),
                    kafka_scram=user) as stack:
        yield stack, home, user


def _exported(home) -> dict:
    out = subprocess.run([sys.executable, "-m", "eventflow_assets.cli", "env"], capture_output=True, text=True,
                         env=_clean_env(EVENTFLOW_HOME=str(home)), check=True).stdout
    pairs = [line.removeprefix("export ").split("=", 1) for line in out.splitlines()]
    return {name: value.strip("'") for name, value in pairs}


def test_scram_login_for_cli_admin_producer_and_both_spark_sources(scram_stack, spark, tmp_path):
    stack, home, user = scram_stack
    exported = _exported(home)
    assert exported["EVENTFLOW_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert exported["EVENTFLOW_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert exported["EVENTFLOW_KAFKA_SASL_USERNAME"] == user.username
    assert exported["EVENTFLOW_KAFKA_SASL_PASSWORD"] == user.password
    env = _clean_env(**exported)
    done = subprocess.run([sys.executable, "-m", "eventflow_assets.cli", "produce", "--count", "200", "--seed", "4",
                           "--quiet"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    expected_orders = sum(end_offsets(stack.endpoints.kafka_config(), [(ORDERS, p) for p in range(3)]).values())
    assert sum(end_offsets(stack.endpoints.kafka_config(), ALL_PARTITIONS).values()) == 200

    # Both sources get their login from the same EVENTFLOW_KAFKA_* settings (translated for the JVM).
    endpoints = resolve_endpoints(Settings.from_env(env))
    for source in ("kafka", "eventflow_kafka"):
        frame = read_topics(spark, endpoints, [ORDERS], StreamConfig(source_format=source))
        name = f"scram_{source}"
        query = (frame.writeStream.format("memory").queryName(name).trigger(availableNow=True)
                 .option("checkpointLocation", str(tmp_path / name)).start())
        try:
            query.awaitTermination(120)
        finally:
            query.stop()
        assert spark.sql(f"SELECT count(*) FROM {name}").first()[0] == expected_orders


@pytest.mark.parametrize("command", [["produce", "--count", "10", "--quiet"], ["streaming"]])
def test_wrong_password_is_one_clear_line_and_writes_nothing(scram_stack, command, pg_url):
    stack, home, user = scram_stack
    provision_topics(stack.endpoints.kafka_config())
    before = end_offsets(stack.endpoints.kafka_config(), ALL_PARTITIONS)
    exported = {**_exported(home), "EVENTFLOW_KAFKA_SASL_PASSWORD": "wrong", "EVENTFLOW_POSTGRES_URL": pg_url}
    argv = ([sys.executable, "jobs/streaming_app.py", "--available-now"] if command == ["streaming"]
            else [sys.executable, "-m", "eventflow_assets.cli", *command])
    done = subprocess.run(argv, capture_output=True, text=True, env=_clean_env(**exported), timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2
    assert len(lines) == 1 and "refused the login" in lines[0] and "SCRAM-SHA-512" in lines[0], done.stderr
    assert user.password not in done.stderr + done.stdout
    assert end_offsets(stack.endpoints.kafka_config(), ALL_PARTITIONS) == before
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
        for (table,) in tables:
            if table in ("schema_migrations", "currency_rates"):  # written by the migrations themselves
                continue
            assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == 0, table


def _segment_bytes(kafka, topic: str, nodes) -> int:
    """The topic's log segment files in the nodes' data directories, each replica counted."""
    return sum(segment_bytes(kafka._data_dir(n), topic) for n in nodes)


def _publish(config: dict, topic: str, count: int) -> None:
    p = producer(config)
    for i in range(count):
        p.produce(topic, b'{"n": %d}' % i, b"user-%d" % i)
    assert p.flush(30) == 0


def test_topic_storage_over_sasl_counts_replication_and_log_sizes(scram_stack):
    """kafka-python logs in with the same SCRAM settings as librdkafka: the sizes are the broker's
    segment files, byte for byte."""
    stack, _, _ = scram_stack
    config = stack.endpoints.kafka_config()
    provision_topics(config)
    _publish(config, ORDERS, 40)
    on_disk = {t: _segment_bytes(stack.kafka, t, [1]) for t in TOPIC_NAMES}
    assert on_disk[ORDERS] > 0
    assert topic_storage(config, TOPIC_NAMES) == ({t: 0 for t in TOPIC_NAMES}, on_disk, None)


def test_topic_storage_log_sizes_refused_login_is_one_line_without_the_password(scram_stack, caplog, capfd):
    """(librdkafka's check in topic_storage stops a wrong password first; kafka-python's own login
    is tried here.) The broker drops the connection, kafka-python retries until the timeout."""
    stack, _, user = scram_stack
    config = stack.endpoints.kafka_config()
    provision_topics(config)
    metadata = admin_client(config).list_topics(timeout=10)
    wrong = "wrong-" + os.urandom(6).hex()
    caplog.set_level("DEBUG")
    with pytest.raises(EventFlowError) as refused:
        log_sizes({**config, "sasl.password": wrong}, metadata, TOPIC_NAMES, timeout=2)
    servers = stack.endpoints.kafka_bootstrap_servers
    assert str(refused.value) == (f"kafka-python got no answer from Kafka at {servers} within 2s: "
                                  f"KafkaTimeoutError: Unable to bootstrap from {servers.split(',')}")
    out, err = capfd.readouterr()
    assert [r.getMessage() for r in caplog.records if r.name.split(".")[0] == "kafka"] == []  # kafka-python's
    assert [t.name for t in threading.enumerate() if CLIENT_ID in t.name] == []  # its IO thread stopped
    for secret in (wrong, user.password):
        assert secret not in caplog.text + out + err


def test_topic_storage_on_three_brokers_counts_every_replica_and_leaves_a_dead_node_out(tmp_path, pg_url):
    settings = Settings.from_env({"EVENTFLOW_HOME": str(tmp_path / "home"), "EVENTFLOW_POSTGRES_URL": pg_url})
    with LocalStack(settings, free_port(), free_port(), kafka_brokers=3) as stack:
        config = stack.endpoints.kafka_config()
        admin, _ = _assert_replicated(stack, config)
        _publish(config, ORDERS, 60)
        _publish(config, TOPIC_NAMES[0], 5)
        lagging, sizes, missing = topic_storage(config, TOPIC_NAMES)
        assert (lagging, missing) == ({t: 0 for t in TOPIC_NAMES}, None)
        assert sizes == {t: _segment_bytes(stack.kafka, t, [1, 2, 3]) for t in TOPIC_NAMES}
        assert sizes[ORDERS] == 3 * _segment_bytes(stack.kafka, ORDERS, [1]) > 0  # each node holds a replica

        before = admin.list_topics(timeout=10)
        stack.kafka.kill(3)
        # Until the controller fences it, node 3 is still in the metadata: the sizes are missing, saying why.
        with pytest.raises(EventFlowError) as down:
            log_sizes(config, before, TOPIC_NAMES)
        assert str(down.value) == (f"no DescribeLogDirs answer from broker 3 at 127.0.0.1:{stack.kafka.client_port(3)} "
                                   "within 3s: KafkaConnectionError: 111 ECONNREFUSED")
        wait_until(lambda: 3 not in admin.list_topics(timeout=10).brokers, 60, "node 3 out of the metadata")
        lagging, sizes, missing = topic_storage(config, TOPIC_NAMES)
        assert (lagging, missing) == ({t: 3 for t in TOPIC_NAMES}, None)
        assert sizes == {t: _segment_bytes(stack.kafka, t, [1, 2]) for t in TOPIC_NAMES}
