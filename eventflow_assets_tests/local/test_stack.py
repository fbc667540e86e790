"""The local stack: what it starts, that it never starts twice, and that it leaves nothing behind."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import psycopg
import pytest

from eventflow_assets.errors import EventFlowError
from eventflow_assets.ingestion.events import TOPIC_NAMES
from eventflow_assets.ingestion.generator import EventGenerator
from eventflow_assets.ingestion.producer import produce
from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.local.processes import free_port, port_in_use
from eventflow_assets.local.stack import LocalStack, resolve_endpoints
from eventflow_assets.settings import Settings
from eventflow_assets_tests.helpers import read_all


def _settings(home, **env):
    return Settings.from_env({"EVENTFLOW_HOME": str(home), **env})


def test_starts_both_on_loopback_and_stops_cleanly(tmp_path):
    kport, pport = free_port(), free_port()
    settings = _settings(tmp_path / "home")
    with LocalStack(settings, kport, pport) as stack:
        ep = stack.endpoints
        assert ep.kafka_bootstrap_servers == f"127.0.0.1:{kport}"
        assert f"@127.0.0.1:{pport}/eventflow" in ep.postgres_url
        with psycopg.connect(ep.postgres_url) as conn:
            assert conn.execute("SELECT current_database()").fetchone()[0] == "eventflow"
        pids = [stack.kafka.procs[1].pid, stack.postgres.proc.pid]
        listening = [c.laddr for pid in pids for c in psutil.Process(pid).net_connections("inet")
                     if c.status == "LISTEN"]
        assert {a.port for a in listening} >= {kport, pport}
        assert {a.ip for a in listening} == {"127.0.0.1"}  # Kafka's internal and controller ports too
        assert resolve_endpoints(settings) == ep
        assert oct((settings.home / "stack.json").stat().st_mode & 0o777) == "0o600"
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)
    assert not port_in_use("127.0.0.1", kport) and not port_in_use("127.0.0.1", pport)
    assert not (settings.home / "stack.json").exists()
    with pytest.raises(EventFlowError, match="no local stack is running"):
        resolve_endpoints(settings)


def test_second_start_on_same_state_is_refused(tmp_path):
    settings = _settings(tmp_path / "home")
    with LocalStack(settings, free_port(), free_port()):
        with pytest.raises(EventFlowError, match="another `eventflow up` or `eventflow services` .* is already running"):
            LocalStack(settings, free_port(), free_port()).start()


def test_database_survives_restart(tmp_path):
    settings = _settings(tmp_path / "home")
    with LocalStack(settings, free_port(), free_port()) as stack:
        with psycopg.connect(stack.endpoints.postgres_url) as conn:
            conn.execute("CREATE TABLE kept (v int)")
            conn.execute("INSERT INTO kept VALUES (42)")
    with LocalStack(settings, free_port(), free_port()) as stack:
        with psycopg.connect(stack.endpoints.postgres_url) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [(42,)]


def test_topics_and_records_survive_restart(tmp_path):
    settings = _settings(tmp_path / "home")
    with LocalStack(settings, free_port(), free_port()) as stack:
        config = stack.endpoints.kafka_config()
        provision_topics(config)
        stats = produce(config, EventGenerator(seed=5), count=300)
        assert stats.delivered == 300
        before = [(r.topic(), r.partition(), r.offset(), r.value()) for r in
                  read_all(stack.endpoints.kafka_bootstrap_servers, TOPIC_NAMES)]
    with LocalStack(settings, free_port(), free_port()) as stack:
        after = [(r.topic(), r.partition(), r.offset(), r.value()) for r in
                 read_all(stack.endpoints.kafka_bootstrap_servers, TOPIC_NAMES)]
    assert len(before) == 300 and sorted(after) == sorted(before)


def test_home_of_one_broker_refuses_three(tmp_path):
    settings = _settings(tmp_path / "home")
    with LocalStack(settings, free_port(), free_port()):
        pass
    with pytest.raises(EventFlowError, match="holds a 1-broker Kafka cluster, not 3: run with --kafka-brokers 1"):
        LocalStack(settings, free_port(), free_port(), kafka_brokers=3).start()


def test_configured_services_start_nothing(tmp_path, kafka_broker, pg_url):
    settings = _settings(tmp_path / "home", EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap_servers,
                         EVENTFLOW_POSTGRES_URL=pg_url)
    with LocalStack(settings, free_port(), free_port()) as stack:
        assert stack.kafka is None and stack.postgres is None
        assert stack.endpoints.kafka_bootstrap_servers == kafka_broker.bootstrap_servers
        assert stack.endpoints.postgres_url == pg_url
    assert resolve_endpoints(settings).postgres_url == pg_url


def test_port_in_use_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(EventFlowError, match=rf"port {port} on 127.0.0.1 is already in use.*--kafka-port"):
            LocalStack(_settings(tmp_path / "home"), port, free_port()).start()
    # the PostgreSQL it started first was stopped again
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(tmp_path) in " ".join(p.info["cmdline"] or [])]


def test_kill_9_of_up_leaves_no_service_running(tmp_path):
    """`eventflow up` killed with SIGKILL: its broker and database die with it (parent-death signal)."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTFLOW_")}
    env["EVENTFLOW_HOME"] = str(home)
    up = subprocess.Popen([sys.executable, "-m", "eventflow_assets.cli", "up", "--no-producer",
                           "--kafka-port", str(free_port()), "--postgres-port", str(free_port()),
                           "--dagster-port", str(free_port()), "--dashboard-port", str(free_port())],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (home / "stack.json").exists():
            assert up.poll() is None, up.stdout.read()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        children = psutil.Process(up.pid).children(recursive=True)
        assert {"postgres", "java"} <= {c.name() for c in children}  # java: the Kafka broker
        json.loads((home / "stack.json").read_text())
    finally:
        up.send_signal(signal.SIGKILL)
        up.wait()
    gone, alive = psutil.wait_procs(children, timeout=20)
    assert alive == []
