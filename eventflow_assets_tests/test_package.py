"""The installable package: the wheel built from the checkout, installed (not editable) into a fresh
virtualenv and run from outside the checkout, gives a working `eventflow`, the jobs, the schema and
the Dagster definitions, all from the wheel.

To stay fast the fresh virtualenv gets the dependencies (not EventFlow) from this one's
site-packages through a .pth line; the wheel itself is installed with --no-deps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import psycopg
import pytest

from eventflow_assets.local.dagster_dev import DEFINITIONS_MODULE

REPO = Path(__file__).resolve().parents[1]
MIGRATIONS = sorted(p.name for p in (REPO / "sql" / "migrations").glob("*.sql"))


def _run(args, cwd: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel, the fresh virtualenv's python, a working directory outside the checkout, its env)."""
    root = tmp_path_factory.mktemp("package")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("EVENTFLOW_", "DAGSTER_", "PYTHON", "VIRTUAL_ENV"))}
    # hatchling from this virtualenv (the test extra): no download of the build backend.
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root / "dist"),
          str(REPO)], root, env)
    (wheel,) = (root / "dist").glob("eventflow-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], root, env)
    python = venv / "bin" / "python"
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        root, env).stdout.strip())
    (purelib / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          str(wheel)], root, env)
    work = root / "work"
    work.mkdir()
    dagster_home = root / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return wheel, python, work, {**env, "EVENTFLOW_HOME": str(root / "home"), "DAGSTER_HOME": str(dagster_home)}


def test_the_wheel_carries_sql_and_jobs_inside_the_package(installed):
    wheel = installed[0]
    names = set(zipfile.ZipFile(wheel).namelist())
    sql = {str(p.relative_to(REPO)) for p in (REPO / "sql").rglob("*.sql")}
    assert {f"eventflow_assets/{name}" for name in sql} <= names
    assert {"eventflow_assets/jobs/streaming_app.py", "eventflow_assets/jobs/batch_analytics_app.py"} <= names
    assert not [n for n in names if n.startswith(("eventflow_assets_tests/", "sql/", "jobs/", "drills/", "bench/"))]


def test_the_installed_package_comes_from_the_wheel_not_the_checkout(installed):
    _, python, work, env = installed
    found = _run([str(python), "-c", "import eventflow_assets.cli as m, eventflow_assets.storage.postgres as p; "
                                     "print(m.__file__); print(p.SQL_DIR)"], work, env).stdout.split()
    site = python.parent.parent / "lib"
    assert all(Path(f).is_relative_to(site) for f in found), found
    assert Path(found[1]) == Path(found[0]).parent / "sql"


def test_eventflow_and_the_jobs_run_from_the_wheel(installed):
    _, python, work, env = installed
    assert _run([str(python.with_name("eventflow")), "--help"], work, env).stdout.startswith("usage: eventflow")
    for job, prog in (("streaming_app", "streaming_app.py"), ("batch_analytics_app", "batch_analytics_app.py")):
        out = _run([str(python), "-m", f"eventflow_assets.jobs.{job}", "--help"], work, env).stdout
        assert out.startswith(f"usage: {prog}"), out


def test_the_installed_package_applies_the_schema_it_carries(installed, pg_url):
    _, python, work, env = installed
    applied = _run([str(python), "-c", "import sys; from eventflow_assets.storage.schema import apply_schema; "
                                       "print(apply_schema(sys.argv[1]))", pg_url], work, env).stdout
    versions = [int(name[:4]) for name in MIGRATIONS]
    assert applied.strip() == str(versions)
    with psycopg.connect(pg_url) as conn:
        recorded = conn.execute("SELECT version, name FROM schema_migrations ORDER BY 1").fetchall()
        assert conn.execute("SELECT to_regclass('orders_raw') IS NOT NULL").fetchone()[0]
    assert recorded == [(int(n[:4]), n[5:-4]) for n in MIGRATIONS]


def test_dagster_loads_the_definitions_by_module_from_the_wheel(installed):
    _, python, work, env = installed
    proc = _run([str(python), "-m", "dagster", "definitions", "validate", "-m", DEFINITIONS_MODULE],
                work, env, timeout=600)
    assert f"Validation successful for code location {DEFINITIONS_MODULE}." in proc.stdout + proc.stderr


# Run in the fresh virtualenv: `eventflow up`'s Dagster (dg dev -m) until its code location has
# loaded; prints the location's name and state.
DEV_SERVER = """
import json, os, sys, time, urllib.request
from pathlib import Path
from eventflow_assets.local.processes import free_port
from eventflow_assets.local.dagster_dev import DagsterDev
dev = DagsterDev(free_port(), dict(os.environ), Path(sys.argv[1]))
dev.start()
query = '{workspaceOrError {... on Workspace {locationEntries {name loadStatus locationOrLoadError {__typename}}}}}'
try:
    deadline = time.monotonic() + 300
    while True:
        request = urllib.request.Request(f"{dev.url}/graphql", json.dumps({"query": query}).encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            entries = json.load(response)["data"]["workspaceOrError"]["locationEntries"]
        if all(e["loadStatus"] == "LOADED" for e in entries) or time.monotonic() > deadline:
            break
        time.sleep(1)
    print(json.dumps([[e["name"], e["locationOrLoadError"]["__typename"]] for e in entries]))
finally:
    dev.stop(None)
"""


def test_eventflow_ups_dagster_loads_the_definitions_from_the_wheel(installed, tmp_path):
    """`eventflow up` starts `dg dev` by module, which needs no project directory: from the wheel, its
    one code location (named as in workspace.yaml) loads."""
    _, python, work, env = installed
    out = _run([str(python), "-c", DEV_SERVER, str(tmp_path / "dagster.log")], work, env, timeout=600).stdout
    assert json.loads(out.splitlines()[-1]) == [[DEFINITIONS_MODULE, "RepositoryLocation"]], \
        (tmp_path / "dagster.log").read_text()[-3000:]
