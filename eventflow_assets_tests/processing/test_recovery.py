"""Fault tolerance: a stopped or killed stream resumes from its checkpoint and the tables end up
exactly as if it had never stopped (no loss, no duplicate)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import psycopg

from eventflow_assets.ingestion.generator import EventGenerator
from eventflow_assets.ingestion.producer import produce
from eventflow_assets.processing.queries import StreamConfig
from eventflow_assets.processing.runner import run_streaming
from eventflow_assets_tests.helpers import read_all
from eventflow_assets_tests.processing.expected import actual_tables, expected_tables
from eventflow_assets_tests.processing.test_streaming import T0, TOPICS, endpoints, ticking_clock  # noqa: F401

REPO = Path(__file__).resolve().parents[2]


def _committed_batches(pg_url, query="orders") -> int:
    with psycopg.connect(pg_url) as conn:
        return conn.execute("SELECT count(*) FROM stream_batches WHERE query_name = %s AND row_count > 0",
                            (query,)).fetchone()[0]


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _assert_exact(pg_url, bootstrap):
    expected = expected_tables(read_all(bootstrap, TOPICS))
    with psycopg.connect(pg_url) as conn:
        actual = actual_tables(conn)
        late = conn.execute("SELECT coalesce(sum(late_rows), 0) FROM stream_progress").fetchone()[0]
    assert late == 0  # in-order input: what is compared is recovery, not lateness
    for table in ("orders_raw", "revenue", "funnel", "rejected"):
        assert actual[table] == expected[table], table


def test_restart_from_checkpoint_after_some_batches(spark, endpoints, kafka_broker, pg_url, tmp_path):  # noqa: F811
    cfg = {"bootstrap.servers": kafka_broker.bootstrap_servers}
    assert produce(cfg, EventGenerator(seed=31, clock=ticking_clock(T0, 0.1)), count=12_000).failed == 0
    stop = threading.Event()
    config = StreamConfig(trigger_seconds=0.5, max_offsets_per_trigger=300)
    runner = threading.Thread(target=run_streaming, args=(spark, endpoints, tmp_path / "chk", config, stop))
    runner.start()
    try:
        _wait_for(lambda: _committed_batches(pg_url) >= 2, 180, "two committed batches")
    finally:
        stop.set()
        runner.join(120)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM orders_raw").fetchone()[0] < 1500  # ~2,400 orders: mid-way
    run_streaming(spark, endpoints, tmp_path / "chk", StreamConfig(available_now=True, max_offsets_per_trigger=300))
    _assert_exact(pg_url, kafka_broker.bootstrap_servers)


def test_kill_9_of_the_driver_mid_stream_then_restart(spark, endpoints, kafka_broker, pg_url, tmp_path):  # noqa: F811
    cfg = {"bootstrap.servers": kafka_broker.bootstrap_servers}
    assert produce(cfg, EventGenerator(seed=32, clock=ticking_clock(T0, 0.1)), count=15_000).failed == 0
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("EVENTFLOW_")},
           "EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers, "EVENTFLOW_POSTGRES_URL": pg_url,
           "EVENTFLOW_HOME": str(tmp_path / "home")}
    driver = subprocess.Popen(
        [sys.executable, str(REPO / "jobs" / "streaming_app.py"), "--trigger-seconds", "1",
         "--max-offsets-per-trigger", "250", "--checkpoint-dir", str(tmp_path / "chk")],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "driver.log", "wb"))
    try:
        _wait_for(lambda: _committed_batches(pg_url) >= 3 or driver.poll() is not None, 300, "three batches")
        assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
        jvm = psutil.Process(driver.pid).children(recursive=True)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    _, alive = psutil.wait_procs(jvm, timeout=60)
    assert alive == []  # the JVM follows its Python driver; nothing else touches the checkpoint
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM orders_raw").fetchone()[0] < 2000  # ~3,000 orders: mid-stream
    run_streaming(spark, endpoints, tmp_path / "chk", StreamConfig(available_now=True, max_offsets_per_trigger=250))
    _assert_exact(pg_url, kafka_broker.bootstrap_servers)
