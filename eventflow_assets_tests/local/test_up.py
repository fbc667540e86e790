"""`eventflow up` as a user runs it: Dagster's supervisor streams live events into the three tables,
whose materializations the sink_table_materializations sensor reports; Ctrl-C stops everything,
the stream's run ending CANCELED; `eventflow up` again finds the topics as they were and the
stream resumes from its checkpoint."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import psycopg
import yaml

from eventflow_assets.local.processes import free_port
from eventflow_assets_tests.exposure import files_containing, listening_beyond_loopback, tables_containing
from eventflow_assets_tests.helpers import command_lines, read_all
from eventflow_assets_tests.processing.expected import actual_tables, expected_tables

TOPICS = ("user-events", "product-view", "orders")
COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
BIN = Path(sys.executable).parent

RUNS = '{ runsOrError { ... on Runs { results { jobName status tags { key value } } } } }'
MATERIALIZED = ('{ assetOrError(assetKey: {path: ["postgres", "orders_raw"]}) '
                '{ ... on Asset { assetMaterializations(limit: 1) { runId metadataEntries { label } } } } }')
SENSOR_TICK_S = 60  # sink_table_materializations' interval


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["data"]


def spark_apps(processes) -> list[str]:
    """The ``spark.app.name`` of each Spark driver (pyspark puts its conf on the JVM's command line)."""
    return [arg.split("=", 1)[1] for cmd in command_lines(processes) if cmd and os.path.basename(cmd[0]) == "java"
            for arg in cmd if arg.startswith("spark.app.name=")]


def of_home(home: str) -> list[psutil.Process]:
    """Processes whose environment has EVENTFLOW_HOME=home: the stack's, also those Dagster's code
    server started (runs, their Spark JVMs), whichever process is their parent."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("EVENTFLOW_HOME") == home:
                found.append(proc)
        except psutil.Error:
            pass
    return found


def start_up(env: dict, dagster_port: int, *options: str, dashboard_port: int | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "eventflow_assets.cli", "up", *options,
                             "--kafka-port", str(free_port()), "--postgres-port", str(free_port()),
                             "--dagster-port", str(dagster_port), "--dashboard-port", str(dashboard_port or free_port())],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def compose_healthcheck(service: str, env: dict, ports: dict[int, int]) -> subprocess.CompletedProcess:
    """Run a docker-compose.yml health check's command here: the image's programs are this
    environment's, the container's ports (``ports``: container -> local) the stack's."""
    test = yaml.safe_load(COMPOSE_FILE.read_text())["services"][service]["healthcheck"]["test"]
    assert test[0] == "CMD", test
    argv = [str(BIN / a) if (BIN / a).exists() else a for a in test[1:]]
    argv = [re.sub(r"localhost:(\d+)", lambda m: f"localhost:{ports.get(int(m[1]), m[1])}", a) for a in argv]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def test_up_streams_live_events_into_the_tables_and_stops_cleanly_then_resumes(tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTFLOW_", "DAGSTER_"))}
    env["EVENTFLOW_HOME"] = str(home)
    dagster_port, dashboard_port = free_port(), free_port()
    up = start_up(env, dagster_port, "--rate", "200", "--seed", "5", dashboard_port=dashboard_port)
    children, reporting = [], {}
    try:
        deadline = time.monotonic() + 60
        while not (home / "stack.json").exists():
            assert up.poll() is None and time.monotonic() < deadline, up.stdout.read()
            time.sleep(0.2)
        url = json.loads((home / "stack.json").read_text())["postgres_url"]
        counts = {}
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert up.poll() is None, up.stdout.read()
            children = psutil.Process(up.pid).children(recursive=True)
            try:
                with psycopg.connect(url) as conn:
                    counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                              for t in ("orders_raw", "revenue_by_currency_5min", "conversion_funnel_5min")}
                    reporting = dict(conn.execute("SELECT query_name, count(*) FROM stream_progress GROUP BY 1"))
                    counts["queries reporting"] = set(reporting) == {"user-events", "product-view", "orders"}
            except psycopg.Error:
                pass  # schema not applied yet
            if counts and all(counts.values()):
                break
            time.sleep(2)
        assert counts and all(counts.values()), (counts, reporting, (home / "logs" / "dagster.log").read_text()[-3000:])

        # The stream is streaming_job, launched by the supervisor sensor, and reports to Dagster.
        runs = graphql(dagster_port, RUNS)["runsOrError"]["results"]
        streams = [r for r in runs if r["jobName"] == "streaming_job"]
        assert [r["status"] for r in streams] == ["STARTED"]
        assert {"key": "dagster/sensor_name", "value": "streaming_supervisor"} in streams[0]["tags"]
        # The sink tables' materializations come from the sink_table_materializations sensor (no run),
        # within about a tick of the first batches.
        deadline = time.monotonic() + 2 * SENSOR_TICK_S + 30
        while not (materialized := graphql(dagster_port, MATERIALIZED)["assetOrError"]["assetMaterializations"]):
            assert time.monotonic() < deadline, (home / "logs" / "dagster.log").read_text()[-3000:]
            time.sleep(2)
        assert materialized[0]["runId"] == ""
        assert {"rows_written", "rows_per_s", "batches", "lag"} <= {
            e["label"] for e in materialized[0]["metadataEntries"]}
        # One driver hosts the stream; analytics runs launched meanwhile bring their own, short-lived.
        apps = spark_apps(psutil.Process(up.pid).children(recursive=True))
        assert apps.count("eventflow-streaming") == 1, apps
        assert set(apps) <= {"eventflow-streaming", "eventflow-analytics"}, apps

        # Nothing of the running stack listens beyond the loopback address: services, Dagster, the
        # dashboard, its runs and their Spark JVMs.
        stack = psutil.Process(up.pid).children(recursive=True) + of_home(str(home))
        assert listening_beyond_loopback(stack) == []
        password = (home / "postgres" / "password").read_text().strip()
        assert len(password) >= 16
        assert {f: oct((home / f).stat().st_mode & 0o777) for f in ("stack.json", "postgres/password")} == {
            "stack.json": "0o600", "postgres/password": "0o600"}
        assert [c for c in command_lines(stack) if password in " ".join(c)] == []  # `ps` shows it to anyone
        dagster_db = json.loads((home / "stack.json").read_text())["dagster_postgres_url"]
        assert tables_containing(dagster_db, password) == {}  # runs, event logs, ticks of Dagster's instance
        status = subprocess.run([sys.executable, "-m", "eventflow_assets.cli", "status", "--json"], env=env,
                                capture_output=True, text=True, timeout=60)
        report = json.loads(status.stdout)
        assert (status.returncode, report["health"]) == (0, {"exit_status": 0, "problems": []})
        assert set(report["streaming"]) == {"user-events", "product-view", "orders"}

        # docker-compose.yml's health checks, run against this live stack: the stream's, the daemon's
        # (DAGSTER_HOME and its database as `up` gives them to Dagster) and the dashboard's.
        from eventflow_assets.local.dagster_instance import instance_env

        checks = {"eventflow-streaming": compose_healthcheck("eventflow-streaming", env, {}),
                  "dagster-daemon": compose_healthcheck("dagster-daemon", {**env, **instance_env(
                      home / "dagster", dagster_db)}, {}),
                  "eventflow-dashboard": compose_healthcheck("eventflow-dashboard", env, {8501: dashboard_port})}
        assert {name: c.returncode for name, c in checks.items()} == dict.fromkeys(checks, 0), checks
        assert checks["dagster-daemon"].stdout.strip() == "Daemon live"
    finally:
        up.send_signal(signal.SIGINT)
        out, _ = up.communicate(timeout=240)
    assert up.returncode == 0, out
    assert "events acknowledged" in out
    assert f"Dagster:    http://127.0.0.1:{dagster_port}" in out
    assert "did not stop in time" not in out
    dagster_log = (home / "logs" / "dagster.log").read_text()
    assert 'RUN_CANCELED - Execution of run for "streaming_job" canceled.' in dagster_log
    _, alive = psutil.wait_procs(children, timeout=30)
    assert alive == []
    # The database password is in no log of the run (ours, Dagster's, its runs' compute logs, the
    # checkpoints) nor in what `up` printed; only in the two 0600 files that hold it by design.
    assert password not in out
    assert files_containing(password, [home / "logs", home / "dagster", home / "checkpoints"]) == []
    _resumes_exactly(env, home)


def _resumes_exactly(env: dict, home) -> None:
    """`up` again (no producer): the same topics, and the stream continues its checkpoint until the
    tables hold exactly what the topics do: nothing lost, nothing counted twice."""
    up = start_up(env, free_port(), "--no-producer")
    try:
        deadline = time.monotonic() + 60
        while not (home / "stack.json").exists():
            assert up.poll() is None and time.monotonic() < deadline, up.stdout.read()
            time.sleep(0.2)
        state = json.loads((home / "stack.json").read_text())
        expected = expected_tables(read_all(state["kafka_bootstrap_servers"], TOPICS))
        assert len(expected["orders_raw"]) > 0
        actual: dict = {}
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert up.poll() is None, up.stdout.read()
            with psycopg.connect(state["postgres_url"]) as conn:
                actual = {k: v for k, v in actual_tables(conn).items() if k in ("orders_raw", "revenue", "funnel")}
            if all(actual[k] == expected[k] for k in actual):
                break
            time.sleep(2)
        assert {k: len(v) for k, v in actual.items()} == {k: len(expected[k]) for k in actual}
        assert all(actual[k] == expected[k] for k in actual)
        with psycopg.connect(state["postgres_url"]) as conn:
            checkpoints = conn.execute("SELECT count(DISTINCT checkpoint_id) FROM stream_progress "
                                       "WHERE query_name = 'orders'").fetchone()[0]
        assert checkpoints == 1  # resumed the first run's checkpoint, not a new one
    finally:
        up.send_signal(signal.SIGINT)
        out, _ = up.communicate(timeout=240)
    assert up.returncode == 0, out
    assert "topics:     user-events (exists), product-view (exists), orders (exists)" in out
