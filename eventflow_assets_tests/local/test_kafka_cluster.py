"""The embedded Apache Kafka beyond one plain node: three replicating brokers, and a SCRAM login
that the producer, the admin client and both Spark sources use (and a wrong password that stops
every command before it writes anything)."""

import os
import subprocess
import sys

import psycopg
import pytest
from confluent_kafka.admin import ConfigResource

from eventflow_assets.ingestion.events import ORDERS, TOPIC_NAMES
from eventflow_assets.ingestion.generator import EventGenerator
from eventflow_assets.ingestion.kafka_clients import admin_client
from eventflow_assets.ingestion.offsets import end_offsets
from eventflow_assets.ingestion.producer import produce
from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.local.kafka_broker import ScramUser
from eventflow_assets.local.processes import free_port
from eventflow_assets.local.stack import LocalStack, resolve_endpoints
from eventflow_assets.processing.queries import StreamConfig, read_topics
from eventflow_assets.settings import Settings
from eventflow_assets_tests.helpers import read_all

ALL_PARTITIONS = [(t, p) for t in TOPIC_NAMES for p in range(3)]


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTFLOW_")}
    return {**env, **extra}


def test_three_brokers_replicate_and_survive_one_killed(tmp_path):
    # PostgreSQL "configured" (never contacted) so that only the three Kafka nodes start.
    settings = Settings.from_env({"EVENTFLOW_HOME": str(tmp_path / "home"),
                                  "EVENTFLOW_POSTGRES_URL": "postgresql://unused@127.0.0.1:1/unused"})
    with LocalStack(settings, free_port(), free_port(), kafka_brokers=3) as stack:
        config = stack.endpoints.kafka_config()
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

        first = produce(config, EventGenerator(seed=11), count=1000)
        stack.kafka.kill(2)
        second = produce(config, EventGenerator(seed=12), count=1000)  # acks=all with 2 of 3 in sync
        assert (first.delivered, first.failed, second.delivered, second.failed) == (1000, 0, 1000, 0)
        stack.kafka.restart(2)
        records = read_all(stack.endpoints.kafka_bootstrap_servers, TOPIC_NAMES)
        assert len(records) == 2000
        assert len({r.value() for r in records}) == 2000


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
