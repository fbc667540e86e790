"""A local Spark standalone cluster (`--spark-workers`): the stream runs on it, found through the
running stack, with exact tables and nothing listening beyond 127.0.0.1; `eventflow env` exports
its master."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import psycopg

from eventflow_assets.ingestion.generator import EventGenerator
from eventflow_assets.ingestion.producer import produce
from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.local.processes import free_port
from eventflow_assets.local.stack import LocalStack, env_exports, running_stack_state
from eventflow_assets.settings import Settings
from eventflow_assets.storage.schema import apply_schema
from eventflow_assets_tests.exposure import listening_beyond_loopback
from eventflow_assets_tests.helpers import command_lines, read_all
from eventflow_assets_tests.processing.expected import actual_tables, expected_tables

APP = Path(__file__).resolve().parents[2] / "jobs" / "streaming_app.py"
TOPICS = ("user-events", "product-view", "orders")


def test_stream_runs_on_the_local_cluster_with_exact_tables(tmp_path, kafka_config, pg_url):
    home = tmp_path / "home"
    configured = {"EVENTFLOW_HOME": str(home), "EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS": kafka_config["bootstrap.servers"],
                  "EVENTFLOW_POSTGRES_URL": pg_url}
    provision_topics(kafka_config)
    apply_schema(pg_url)
    assert produce(kafka_config, EventGenerator(seed=21), count=3000).failed == 0
    with LocalStack(Settings.from_env(configured), spark_workers=1, spark_master_port=free_port()) as stack:
        master = stack.spark.master_url
        assert stack.spark.alive_workers() == 1
        assert ("EVENTFLOW_SPARK_MASTER", master) in env_exports(running_stack_state(home))
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTFLOW_")}
        app = subprocess.Popen([sys.executable, str(APP), "--available-now", "--checkpoint-dir", str(tmp_path / "chk")],
                               env={**env, **configured}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # While it runs, nothing of the cluster (master, worker, executors) or the driver listens
        # beyond 127.0.0.1.
        exposed, executors = set(), set()
        while app.poll() is None:
            procs = [psutil.Process(p.pid) for p in stack.spark.procs] + [psutil.Process(app.pid)]
            procs += [c for p in procs for c in p.children(recursive=True)]
            executors |= {c for c in map(" ".join, command_lines(procs)) if "CoarseGrainedExecutorBackend" in c}
            exposed |= set(listening_beyond_loopback(procs))
            time.sleep(1)
        assert app.returncode == 0, app.stderr.read()[-3000:]
        assert executors and exposed == set(), (exposed, executors)
        with urllib.request.urlopen(f"{stack.spark.master_ui}/json/", timeout=5) as response:
            apps = json.loads(response.read())
        assert [a["name"] for a in apps["completedapps"]] == ["eventflow-streaming"]  # it ran on the cluster
    expected = expected_tables(read_all(kafka_config["bootstrap.servers"], TOPICS))
    with psycopg.connect(pg_url) as conn:
        actual = actual_tables(conn)
    for table in ("orders_raw", "revenue", "funnel"):
        assert actual[table] == expected[table], table
