"""`eventflow dashboard` and the dashboard of `eventflow up`: options, which database it reads,
a busy port, and the child process that dies with its parent."""

import os
import signal
import socket
import subprocess
import sys
import textwrap

import psutil
import psycopg
import pytest

from eventflow_assets.cli import build_parser
from eventflow_assets.dashboard.server import DashboardProcess, read_url
from eventflow_assets.errors import EventFlowError
from eventflow_assets.local.processes import free_port, wait_for_port
from eventflow_assets.settings import Settings


def run(*args, env=None, timeout=120):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTFLOW_", "DAGSTER_"))}
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "eventflow_assets.cli", *args], capture_output=True, text=True,
                          env=base, timeout=timeout)


def test_options_and_defaults(monkeypatch):
    monkeypatch.delenv("EVENTFLOW_DAGSTER_URL", raising=False)
    args = build_parser().parse_args(["dashboard"])
    assert (args.port, args.host, args.dagster_url, args.refresh) == (8501, "127.0.0.1", "http://127.0.0.1:3000", 5.0)
    assert build_parser().parse_args(["up"]).dashboard_port == 8501
    assert build_parser().parse_args(["up", "--dashboard-port", "8600"]).dashboard_port == 8600
    monkeypatch.setenv("EVENTFLOW_DAGSTER_URL", "https://dagster.example.com")
    assert build_parser().parse_args(["dashboard", "--port", "9000"]).dagster_url == "https://dagster.example.com"


def test_help():
    result = run("dashboard", "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: eventflow dashboard")
    assert "examples:" in result.stdout and "eventflow dashboard --port 8600" in result.stdout
    assert "--dashboard-port" in run("up", "--help").stdout


def test_reads_the_replica_as_it_is(pg_url):
    url = read_url(Settings.from_env({"EVENTFLOW_POSTGRES_READ_URL": pg_url}))
    assert url == pg_url
    with psycopg.connect(pg_url) as conn:  # a replica's schema is the primary's business
        assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0] is None


def test_reads_the_primary_with_its_schema_applied(pg_url):
    assert read_url(Settings.from_env({"EVENTFLOW_POSTGRES_URL": pg_url})) == pg_url
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM revenue_by_currency_5min").fetchone()[0] == 0


def test_without_any_database_says_how_to_get_one(tmp_path):
    with pytest.raises(EventFlowError, match="no local stack is running"):
        read_url(Settings.from_env({"EVENTFLOW_HOME": str(tmp_path)}))
    result = run("dashboard", "--port", str(free_port()), env={"EVENTFLOW_HOME": str(tmp_path)})
    assert result.returncode == 2 and "no local stack is running" in result.stderr
    assert "Traceback" not in result.stderr


def test_busy_port(pg_url, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("dashboard", "--port", str(port), env={"EVENTFLOW_POSTGRES_READ_URL": pg_url})
        with pytest.raises(EventFlowError, match="--dashboard-port"):
            DashboardProcess(port, "http://127.0.0.1:3000", tmp_path / "log").check_port()
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use, so the dashboard cannot start there" in result.stderr


PARENT = """
import os, sys, time
from pathlib import Path
from eventflow_assets.dashboard.server import DashboardProcess
dashboard = DashboardProcess(int(sys.argv[1]), "http://127.0.0.1:3000", Path(sys.argv[2]))
dashboard.start(dict(os.environ))
dashboard.wait_ready(120)
print(dashboard.proc.pid, flush=True)
time.sleep(600)
"""


def test_dies_with_its_parent_even_by_sigkill(pg_url, tmp_path):
    """What keeps `kill -9` of `eventflow up` from leaving a dashboard behind."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTFLOW_", "DAGSTER_"))}
    env["EVENTFLOW_POSTGRES_READ_URL"] = pg_url
    port = free_port()
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(PARENT), str(port), str(tmp_path / "log")],
                              env=env, stdout=subprocess.PIPE, text=True)
    try:
        child = psutil.Process(int(parent.stdout.readline()))
        assert wait_for_port("127.0.0.1", port, 60)  # start-up is not what this test measures
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        child.wait(30)  # psutil.TimeoutExpired if it outlived its parent
        assert not wait_for_port("127.0.0.1", port, 0.5)
    finally:
        parent.kill()
        parent.wait(10)
