"""`eventflow up` as a user runs it: live events reach the three tables; Ctrl-C stops everything."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import psycopg

from eventflow_assets.local.processes import free_port


def test_up_streams_live_events_into_the_tables_and_stops_cleanly(tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTFLOW_")}
    env["EVENTFLOW_HOME"] = str(home)
    up = subprocess.Popen([sys.executable, "-m", "eventflow_assets.cli", "up", "--rate", "200", "--seed", "5",
                           "--kafka-port", str(free_port()), "--postgres-port", str(free_port())],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    children = []
    try:
        deadline = time.monotonic() + 60
        while not (home / "stack.json").exists():
            assert up.poll() is None and time.monotonic() < deadline, up.stdout.read()
            time.sleep(0.2)
        url = json.loads((home / "stack.json").read_text())["postgres_url"]
        counts = {}
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert up.poll() is None, up.stdout.read()
            children = psutil.Process(up.pid).children(recursive=True)
            try:
                with psycopg.connect(url) as conn:
                    counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                              for t in ("orders_raw", "revenue_by_currency_5min", "conversion_funnel_5min")}
                    counts["queries reporting"] = conn.execute(
                        "SELECT count(DISTINCT query_name) FROM stream_progress").fetchone()[0] == 4
            except psycopg.Error:
                pass  # schema not applied yet
            if counts and all(counts.values()):
                break
            time.sleep(2)
        assert counts and all(counts.values()), (counts, (home / "logs" / "streaming.log").read_text()[-3000:])
        status = subprocess.run([sys.executable, "-m", "eventflow_assets.cli", "status", "--json"], env=env,
                                capture_output=True, text=True, timeout=60)
        report = json.loads(status.stdout)
        assert set(report["streaming"]) == {"orders_raw", "revenue_by_currency_5min", "conversion_funnel_5min",
                                            "rejected_events"}
    finally:
        up.send_signal(signal.SIGINT)
        out, _ = up.communicate(timeout=180)
    assert up.returncode == 0, out
    assert "events acknowledged" in out
    _, alive = psutil.wait_procs(children, timeout=30)
    assert alive == []
