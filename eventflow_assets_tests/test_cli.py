"""The `eventflow` command as a user runs it: help texts and the documented errors."""

import os
import socket
import subprocess
import sys

import pytest

from eventflow_assets.local.kafka_broker import KAFKA_VERSION
from eventflow_assets.local.processes import free_port, port_in_use


def run(*args, env=None, timeout=120):
    base = {k: v for k, v in os.environ.items() if not k.startswith("EVENTFLOW_")}
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "eventflow_assets.cli", *args], capture_output=True, text=True,
                          env=base, timeout=timeout)


@pytest.mark.parametrize("command", [[], ["up"], ["services"], ["env"], ["produce"], ["status"]])
def test_help(command):
    result = run(*command, "--help")
    assert result.returncode == 0
    assert "EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS" in result.stdout
    assert result.stdout.startswith(f"usage: eventflow {command[0] if command else ''}".rstrip())


def test_version_names_the_parts_it_runs():
    from importlib.metadata import version

    result = run("--version")
    assert result.returncode == 0
    assert result.stdout == (f"eventflow {version('eventflow')} (Apache Kafka {KAFKA_VERSION} embedded, "
                             f"Spark {version('pyspark')}, Dagster {version('dagster')})\n")


def test_produce_without_any_kafka_says_how_to_get_one(tmp_path):
    result = run("produce", "--count", "1", env={"EVENTFLOW_HOME": str(tmp_path)})
    assert result.returncode == 2
    assert "no local stack is running" in result.stderr and "eventflow up" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_broker(tmp_path, pg_url):
    port = free_port()
    result = run("status", env={"EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
                                "EVENTFLOW_POSTGRES_URL": pg_url, "EVENTFLOW_HOME": str(tmp_path)})
    assert result.returncode == 2
    assert f"eventflow: error: cannot reach Kafka at 127.0.0.1:{port}" in result.stderr


def test_bad_postgres_url(tmp_path):
    result = run("status", env={"EVENTFLOW_POSTGRES_URL": "mysql://root:pw@localhost/x",
                                "EVENTFLOW_HOME": str(tmp_path)})
    assert result.returncode == 2
    assert "EVENTFLOW_POSTGRES_URL must be a libpq URI" in result.stderr
    assert ":pw@" not in result.stderr


def test_unreachable_postgres_hides_password(tmp_path, kafka_broker):
    port = free_port()
    result = run("status", env={"EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
                                "EVENTFLOW_POSTGRES_URL": f"postgresql://u:hunter2@127.0.0.1:{port}/db",
                                "EVENTFLOW_HOME": str(tmp_path)})
    assert result.returncode == 2
    assert f"cannot connect to PostgreSQL at postgresql://u:***@127.0.0.1:{port}/db" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("up", "--postgres-port", str(port), "--kafka-port", str(free_port()),
                     "--dagster-port", str(free_port()), "--dashboard-port", str(free_port()),
                     env={"EVENTFLOW_HOME": str(tmp_path)})
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--postgres-port" in result.stderr


def test_missing_java(tmp_path):
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    result = run("up", env={"EVENTFLOW_HOME": str(tmp_path), "PATH": str(empty_bin), "JAVA_HOME": ""})
    assert result.returncode == 2
    assert "Java 17 or 21 is required for Spark: no `java` on PATH" in result.stderr
    assert "openjdk-17-jre-headless" in result.stderr


def test_wrong_java_version(tmp_path):
    fake = tmp_path / "jdk" / "bin"
    fake.mkdir(parents=True)
    (fake / "java").write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    (fake / "java").chmod(0o755)
    result = run("up", env={"EVENTFLOW_HOME": str(tmp_path), "JAVA_HOME": str(tmp_path / "jdk")})
    assert result.returncode == 2
    assert "Spark 4 needs Java 17 or 21, found Java 11" in result.stderr


def test_status_reports_topics_and_tables(kafka_broker, pg_url, tmp_path):
    env = {"EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers, "EVENTFLOW_POSTGRES_URL": pg_url,
           "EVENTFLOW_HOME": str(tmp_path)}
    assert run("produce", "--count", "3000", "--seed", "1", "--quiet", env=env).returncode == 0
    result = run("status", "--json", env=env)
    assert result.returncode == 1, result.stderr  # records wait and no query has run: a gate fails
    import json

    from eventflow_assets_tests.helpers import read_all

    report = json.loads(result.stdout)
    records = read_all(kafka_broker.bootstrap_servers, ["user-events", "product-view", "orders"])
    for topic in ("user-events", "product-view", "orders"):
        expected = {str(p): sum(1 for r in records if r.topic() == topic and r.partition() == p) for p in range(3)}
        assert report["topics"][topic]["end_offsets"] == expected
    assert sum(report["topics"][t]["records"] for t in report["topics"]) == 3000
    assert report["tables"] == {"orders_raw": 0, "revenue_by_currency_5min": 0, "conversion_funnel_5min": 0,
                                "rejected_events": 0}
    assert report["analytics"] == {
        "analytics_revenue_trends": {"rows": 0, "computed_at": None, "latest_window_end": None},
        **{t: {"rows": 0, "computed_at": None} for t in ("analytics_top_revenue_by_currency",
                                                         "analytics_conversion_rates", "analytics_user_segments")}}
    assert report["health"] == {"exit_status": 1, "problems": [
        f"{q}: no micro-batch recorded yet" for q in ("user-events", "product-view", "orders")]}
    text = run("status", env=env)
    assert text.returncode == 1
    assert "Health: STALE (exit status 1)\n  user-events: no micro-batch recorded yet\n" in text.stdout
    assert "  analytics_revenue_trends           0  computed never\n" in text.stdout


def test_env_with_nothing_running_is_one_line_and_exit_2(tmp_path):
    result = run("env", env={"EVENTFLOW_HOME": str(tmp_path)})
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"eventflow: no services are running on EVENTFLOW_HOME={tmp_path}: start `eventflow services` or "
        "`eventflow up`"]


def test_services_then_env_in_another_shell_then_sigterm(tmp_path):
    """`eventflow services` runs Kafka and PostgreSQL until SIGTERM; `eval "$(eventflow env)"` in a
    shell points `eventflow produce` at them; a second `services` on the same home is refused."""
    home = tmp_path / "home"
    kport, pport = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTFLOW_")}
    env["EVENTFLOW_HOME"] = str(home)
    services = subprocess.Popen([sys.executable, "-m", "eventflow_assets.cli", "services", "--kafka-port",
                                 str(kport), "--postgres-port", str(pport)], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lines = []
        while not lines or not lines[-1].startswith("running;"):
            line = services.stdout.readline()
            assert line, f"services exited: {services.stderr.read()}"
            lines.append(line.strip())
        assert lines[0] == f"Kafka:      127.0.0.1:{kport}  (embedded Apache Kafka {KAFKA_VERSION}, 1 broker, logs " \
                           f"{home / 'logs'})"
        assert lines[3] == "topics:     user-events (created), product-view (created), orders (created)"
        script = ('eval "$(eventflow env)" && [ "$EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS" = 127.0.0.1:%d ] && '
                  'eventflow produce --count 50 --quiet' % kport)
        shell = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                               env={**env, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"})
        assert shell.returncode == 0, shell.stderr
        assert shell.stdout.startswith("50 events acknowledged")
        second = run("services", "--kafka-port", str(free_port()), "--postgres-port", str(free_port()),
                     env={"EVENTFLOW_HOME": str(home)})
        assert second.returncode == 2
        assert "another `eventflow up` or `eventflow services`" in second.stderr
    finally:
        services.terminate()
        assert services.wait(60) == 0
    assert not port_in_use("127.0.0.1", kport) and not port_in_use("127.0.0.1", pport)
    assert run("env", env={"EVENTFLOW_HOME": str(home)}).returncode == 2
