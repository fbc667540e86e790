"""The repository is a `dg` project: from its root, `dg check defs` and `dg list defs` load the one
Definitions of eventflow_assets.definitions, as a user runs them (no EVENTFLOW_* configuration,
a fresh DAGSTER_HOME)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from eventflow_assets.definitions import defs
from eventflow_assets.local.dagster_dev import DEFINITIONS_MODULE

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
DG = Path(sys.executable).with_name("dg")  # the console script of dagster-dg-cli, beside this interpreter


def dg(tmp_path, *args: str) -> subprocess.CompletedProcess:
    home = tmp_path / "dagster"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTFLOW_", "DAGSTER_"))}
    env["DAGSTER_HOME"] = str(home)
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix  # as in a shell that activated this virtualenv
    return subprocess.run([str(DG), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_dg_check_defs_loads_the_definitions(tmp_path):
    result = dg(tmp_path, "check", "defs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully." in result.stdout, result.stdout + result.stderr


def test_dg_list_defs_lists_exactly_the_definitions(tmp_path):
    result = dg(tmp_path, "list", "defs", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    listed = json.loads(result.stdout)
    assets = {a["asset_key"] for a in listed["assets"]}
    assert {"kafka/orders", "kafka/user-events", "kafka/product-view", "postgres/orders_raw",
            "postgres/revenue_by_currency_5min", "postgres/conversion_funnel_5min",
            "postgres/rejected_events"} <= assets
    repo = defs.get_repository_def()
    assert assets == {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    assert {j["name"] for j in listed["jobs"]} == {j.name for j in repo.get_all_jobs() if not j.name.startswith("__")}
    assert {s["name"] for s in listed["sensors"]} == {s.name for s in repo.sensor_defs}
    assert {s["name"] for s in listed["schedules"]} == {s.name for s in repo.schedule_defs}


def test_dg_and_workspace_yaml_name_the_same_code_location():
    """`eventflow up` (`dg dev -m`, whose location is named after the module), `dg` in the checkout
    and the container deployment (workspace.yaml) share runs and sensor state only if they name the
    location alike."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dg"]["project"]
    (entry,) = yaml.safe_load((REPO / "workspace.yaml").read_text())["load_from"]
    module = entry["python_module"]
    assert project["code_location_target_module"] == module["module_name"] == DEFINITIONS_MODULE
    assert project["code_location_name"] == module["location_name"] == DEFINITIONS_MODULE
