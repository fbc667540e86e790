"""jobs/batch_analytics_app.py as users run it: a subprocess with only EVENTFLOW_POSTGRES_URL set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from eventflow_assets.local.processes import free_port
from eventflow_assets_tests.analytics.test_run import ANALYTICS_TABLES, expected_tables
from eventflow_assets_tests.helpers import table_rows

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "jobs" / "batch_analytics_app.py"


def run_app(tmp_path, *args, postgres_url: str | None = None, timeout: float = 300, env: dict | None = None):
    """The application with no EVENTFLOW_* variable but these (and ``env``)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("EVENTFLOW_")}
    base["EVENTFLOW_HOME"] = str(tmp_path / "home")
    if postgres_url:
        base["EVENTFLOW_POSTGRES_URL"] = postgres_url
    env = {**base, **(env or {})}
    return subprocess.run([sys.executable, str(APP), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_help(tmp_path):
    done = run_app(tmp_path, "--help")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: batch_analytics_app.py")
    assert "--trends-from" in done.stdout and done.stderr == ""


def test_trends_range_options_are_checked(tmp_path):
    alone = run_app(tmp_path, "--trends-from", "2026-11-24T01:00:00Z")
    assert alone.returncode == 2 and "--trends-from and --trends-to go together" in alone.stderr
    backwards = run_app(tmp_path, "--trends-from", "2026-11-24T02:00Z", "--trends-to", "2026-11-24T01:00Z")
    assert backwards.returncode == 2 and "--trends-from must be before --trends-to" in backwards.stderr
    garbage = run_app(tmp_path, "--trends-from", "yesterday", "--trends-to", "2026-11-24T01:00Z")
    assert garbage.returncode == 2 and "not an ISO-8601 time: 'yesterday'" in garbage.stderr


def test_unreachable_database_is_one_line_and_exit_2(tmp_path):
    port = free_port()
    done = run_app(tmp_path, postgres_url=f"postgresql://u:hunter2@127.0.0.1:{port}/db")
    assert done.returncode == 2
    assert done.stderr.startswith(f"batch_analytics_app: error: cannot connect to PostgreSQL at "
                                  f"postgresql://u:***@127.0.0.1:{port}/db")
    assert len(done.stderr.strip().splitlines()) == 1 and "hunter2" not in done.stderr


def test_no_database_configured_and_no_stack_says_what_to_do(tmp_path):
    done = run_app(tmp_path)
    assert done.returncode == 2
    assert "EVENTFLOW_POSTGRES_URL" in done.stderr and "eventflow up" in done.stderr


def test_end_to_end_writes_the_tables_and_prints_the_four_analyses(loaded_url, tmp_path):
    done = run_app(tmp_path, "--top", "3", postgres_url=loaded_url)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {t: table_rows(loaded_url, t) for t in ANALYTICS_TABLES} == expected_tables()
    out = done.stdout
    for title in ("=== Top revenue by currency ===", "=== Conversion rates ===", "=== Revenue trends ===",
                  "=== User segments ==="):
        assert title in out
    top_revenue, conversion, trends, segments = (out.split(t)[1].split("===")[0] for t in (
        "Top revenue by currency ===", "Conversion rates ===", "Revenue trends ===", "User segments ==="))
    assert [line.split()[0] for line in top_revenue.splitlines()[3:8]] == ["JPY", "USD", "EUR", "CAD", "GBP"]
    assert top_revenue.splitlines()[4].split() == ["USD", "450.05", "14", "32.15", "450.05"]
    assert [line.split()[0] for line in conversion.splitlines()[4:7]] == ["u_f", "u_g", "u_d"]
    assert "2026-11-24 01:00       6             128.04" in trends
    assert "warning: no rate in currency_rates for JPY" in trends
    assert [line.split() for line in segments.splitlines()[3:7]] == [
        ["VIP", "2", "4", "2041.51", "1020.76"], ["Premium", "4", "5", "3100.01", "775.00"],
        ["Regular", "2", "5", "537.15", "268.58"], ["New", "2", "2", "525.39", "262.70"]]


def test_analysis_option_runs_only_the_named_analyses(loaded_url, tmp_path):
    """What each Dagster analytics step passes; without Dagster around it is the plain command."""
    done = run_app(tmp_path, "--analysis", "conversion_rates", "--analysis", "user_segments", postgres_url=loaded_url)
    assert done.returncode == 0, done.stderr[-3000:]
    expected = expected_tables()
    written = {"analytics_conversion_rates", "analytics_user_segments", "analytics_segment_summary"}
    assert {t: table_rows(loaded_url, t) for t in ANALYTICS_TABLES} == {
        t: expected[t] if t in written else set() for t in ANALYTICS_TABLES}
    assert [line for line in done.stdout.splitlines() if line.startswith("=== ")] == [
        "=== Conversion rates ===", "=== User segments ==="]
    assert "dagster" not in done.stderr.lower()  # no Pipes warning when Dagster did not launch it
