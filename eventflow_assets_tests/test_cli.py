"""The `eventflow` command as a user runs it: help texts and the documented errors."""

import argparse
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from eventflow_assets.cli import build_parser, progress_line
from eventflow_assets.local.kafka_broker import KAFKA_VERSION
from eventflow_assets.local.processes import free_port, port_in_use


def run(*args, env=None, timeout=120):
    base = {k: v for k, v in os.environ.items() if not k.startswith("EVENTFLOW_")}
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "eventflow_assets.cli", *args], capture_output=True, text=True,
                          env=base, timeout=timeout)


REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", [[], ["up"], ["services"], ["env"], ["produce"], ["status"], ["stream"],
                                     ["analytics"], ["logs"], ["reset"], ["db"]])
def test_help(command):
    result = run(*command, "--help")
    assert result.returncode == 0
    assert "EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS" in result.stdout and "\nexamples:\n  eventflow " in result.stdout
    assert result.stdout.startswith(f"usage: eventflow {command[0] if command else ''}".rstrip())


def test_every_command_has_examples_in_its_help():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {"up", "services", "env", "produce", "status", "dashboard", "stream", "analytics", "logs", "reset", "db",
            "completion"} == set(sub.choices)
    for name, parser in sub.choices.items():
        assert "\nexamples:\n  eventflow " in parser.format_help(), name


@pytest.mark.parametrize("command, script", [("stream", "streaming_app.py"), ("analytics", "batch_analytics_app.py")])
def test_the_subcommand_and_the_spark_submit_script_take_the_same_options(command, script):
    def options(text: str) -> set[str]:
        return set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", text.split("\nexamples:")[0]))

    sub, job = run(command, "--help"), subprocess.run([sys.executable, str(REPO / "jobs" / script), "--help"],
                                                      capture_output=True, text=True, timeout=60)
    assert sub.returncode == job.returncode == 0
    assert job.stdout.startswith(f"usage: {script}")
    assert options(sub.stdout) == options(job.stdout) and "--available-now" in options(
        sub.stdout) | {"--available-now" if command == "analytics" else ""}
    assert f"python jobs/{script}" in job.stdout and f"  eventflow {command}" in sub.stdout


def test_produce_progress_shows_share_done_and_time_left():
    assert progress_line(500, 400, 0, 100.0, 1000) == " 40.0%  sent 500  acked 400  failed 0  100 events/s  6s left"
    assert progress_line(10, 0, 0, 0.0, 1000) == "  0.0%  sent 10  acked 0  failed 0  0 events/s  time left unknown"
    assert progress_line(7, 5, 1, 2.5, None) == "sent 7  acked 5  failed 1  2 events/s"


def test_bash_completes_commands_options_and_services():
    bash = run("completion", "bash")
    assert bash.returncode == 0

    def complete(*words: str) -> list[str]:
        """What bash offers for the last word, as its completion machinery calls the script."""
        line = " ".join(words)
        script = (f"source /dev/stdin; COMP_WORDS=({' '.join(repr(w) for w in words)}); "
                  f"COMP_CWORD={len(words) - 1}; COMP_LINE={line!r}; COMP_POINT={len(line)}; "
                  f"_shtab_eventflow eventflow {words[-1]!r} {words[-2]!r}; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
        done = subprocess.run(["bash", "-c", script], input=bash.stdout, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return sorted(done.stdout.split())

    assert complete("eventflow", "re") == ["reset"]
    assert complete("eventflow", "reset", "--t") == ["--topics"]
    assert complete("eventflow", "logs", "") == ["dagster", "dashboard", "kafka", "postgres", "spark", "stream"]
    zsh = run("completion", "zsh")
    assert zsh.returncode == 0 and zsh.stdout.startswith("#compdef eventflow")


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


def _fill(pg_url: str, recorded_ago: str) -> dict[str, int]:
    """One row in each table the stream writes and in one analytics table; returns the counts."""
    import psycopg

    from eventflow_assets.storage.schema import apply_schema

    apply_schema(pg_url)
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO orders_raw VALUES ('o1', 'u1', 'p1', 9.99, 'USD', now(), 0, 5)")
        conn.execute("INSERT INTO revenue_by_currency_5min VALUES ('2026-12-01 10:00Z', '2026-12-01 10:05Z', 'USD', "
                     "9.99, 1, 9.99)")
        conn.execute("INSERT INTO conversion_funnel_5min (window_start, window_end, user_id, view_count, order_count) "
                     "VALUES ('2026-12-01 10:00Z', '2026-12-01 10:05Z', 'u1', 3, 1)")
        conn.execute("INSERT INTO rejected_events (topic, partition, \"offset\", payload, payload_bytes, reason) "
                     "VALUES ('orders', 0, 6, '{', 1, 'not JSON')")
        conn.execute("INSERT INTO stream_batches (query_name, checkpoint_id, batch_id, row_count) "
                     "VALUES ('orders', 'c1', 0, 1)")
        conn.execute("INSERT INTO stream_progress (query_name, checkpoint_id, batch_id, recorded_at, input_rows, "
                     "output_rows, late_rows, rejected_rows, duration_ms) "
                     f"VALUES ('orders', 'c1', 0, now() - interval '{recorded_ago}', 2, 1, 0, 1, 900)")
        conn.execute("INSERT INTO stream_topics (query_name, checkpoint_id, topic, topic_id) "
                     "VALUES ('orders', 'c1', 'orders', 'AAAAAAAAAAAAAAAAAAAAAA')")
        conn.execute("INSERT INTO analytics_segment_summary (segment, users, revenue_usd, orders) "
                     "VALUES ('VIP', 1, 1500, 1)")
        conn.execute("INSERT INTO orders_raw_archive (day, file, row_count, archived_at) "
                     "VALUES ('2026-01-01', '/archive/orders_raw/2026-01-01.csv.gz', 3, now())")
    return _counts(pg_url)


def _counts(pg_url: str) -> dict[str, int]:
    import psycopg

    tables = ("orders_raw", "revenue_by_currency_5min", "conversion_funnel_5min", "rejected_events",
              "stream_batches", "stream_progress", "stream_topics", "analytics_segment_summary", "orders_raw_archive",
              "currency_rates")
    with psycopg.connect(pg_url) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def test_reset_asks_refuses_while_streaming_then_empties_tables_checkpoints_and_topics(kafka_broker, pg_url,
                                                                                         tmp_path):
    from eventflow_assets_tests.helpers import read_all

    env = {"EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers, "EVENTFLOW_POSTGRES_URL": pg_url,
           "EVENTFLOW_HOME": str(tmp_path)}
    assert run("produce", "--count", "300", "--seed", "2", "--quiet", env=env).returncode == 0
    checkpoint = tmp_path / "checkpoints" / "orders" / "offsets"
    checkpoint.mkdir(parents=True)
    (checkpoint / "0").write_text("v1\n")
    before = _fill(pg_url, "5 seconds")
    assert before == {"orders_raw": 1, "revenue_by_currency_5min": 1, "conversion_funnel_5min": 1,
                      "rejected_events": 1, "stream_batches": 1, "stream_progress": 1, "stream_topics": 1,
                      "analytics_segment_summary": 1, "orders_raw_archive": 1,
                      "currency_rates": 5}

    running = run("reset", "--yes", env=env)
    assert running.returncode == 2
    assert running.stderr.startswith("eventflow: error: a stream recorded progress ")
    assert "stop it first" in running.stderr and checkpoint.exists() and _counts(pg_url) == before

    import psycopg

    with psycopg.connect(pg_url) as conn:
        conn.execute("UPDATE stream_progress SET recorded_at = now() - interval '2 minutes'")
    unconfirmed = run("reset", env=env)  # stdin is not a terminal
    assert unconfirmed.returncode == 2
    assert unconfirmed.stderr == "eventflow: error: not confirmed: stdin is not a terminal; add --yes to confirm\n"
    assert checkpoint.exists() and _counts(pg_url) == before

    done = run("reset", "--yes", "--topics", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("This deletes 9 rows from 16 tables in postgresql://")
    assert not (tmp_path / "checkpoints").exists()
    after = _counts(pg_url)
    with psycopg.connect(pg_url) as conn:
        migrations = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0]
    assert after == {**{t: 0 for t in before}, "currency_rates": 5}
    assert migrations == len(list((REPO / "sql" / "migrations").glob("*.sql")))
    assert read_all(kafka_broker.bootstrap_servers, ["user-events", "product-view", "orders"]) == []
    from confluent_kafka.admin import AdminClient

    topics = AdminClient({"bootstrap.servers": kafka_broker.bootstrap_servers}).list_topics(timeout=10).topics
    assert {t: len(topics[t].partitions) for t in ("user-events", "product-view", "orders")} == {
        "user-events": 3, "product-view": 3, "orders": 3}


def test_db_runs_psql_on_the_database_or_prints_its_url(pg_url, tmp_path):
    env = {"EVENTFLOW_POSTGRES_URL": pg_url, "EVENTFLOW_HOME": str(tmp_path)}
    url = run("db", "--url", env=env)
    assert (url.returncode, url.stdout) == (0, pg_url + "\n")
    query = run("db", "--", "-At", "-c", "SELECT 6 * 7", env=env)
    assert (query.returncode, query.stdout, query.stderr) == (0, "42\n", "")
    no_psql = run("db", env={**env, "PATH": str(tmp_path)})
    assert no_psql.returncode == 2 and "psql is not installed" in no_psql.stderr


def test_status_watch_repeats_until_interrupted_and_exits_with_the_last_verdict(kafka_broker, pg_url, tmp_path):
    import signal

    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTFLOW_")}
    env.update({"EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers, "EVENTFLOW_POSTGRES_URL": pg_url,
                "EVENTFLOW_HOME": str(tmp_path)})
    watch = subprocess.Popen([sys.executable, "-m", "eventflow_assets.cli", "status", "--watch", "0.5"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reports = 0
    try:
        while reports < 3:
            line = watch.stdout.readline()
            assert line, watch.stderr.read()
            reports += line.startswith("Topics (end offset per partition):")
    finally:
        watch.send_signal(signal.SIGINT)
        out, _ = watch.communicate(timeout=60)
    assert watch.returncode == 1  # no query ever ran: stale
