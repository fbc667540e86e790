"""Fault tolerance: a stopped or killed stream resumes from its checkpoint and the tables end up
exactly as if it had never stopped (no loss, no duplicate)."""

from __future__ import annotations

import threading
import time

import psycopg

from drills.faults import crash_drill
from eventflow_assets.ingestion.generator import EventGenerator
from eventflow_assets.ingestion.producer import produce
from eventflow_assets.processing.queries import StreamConfig
from eventflow_assets.processing.runner import run_streaming
from eventflow_assets_tests.helpers import read_all
from eventflow_assets_tests.processing.expected import actual_tables, expected_tables
from eventflow_assets_tests.processing.test_streaming import T0, TOPICS, ticking_clock


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


def test_restart_from_checkpoint_after_some_batches(spark, endpoints, kafka_broker, pg_url, tmp_path):
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


def test_three_kill_9s_of_the_driver_while_events_arrive(endpoints, kafka_broker, pg_url, tmp_path):
    """The short version of the crash drill (`make drill`, drills/faults.py): events arrive at a steady
    rate while the driver is SIGKILLed three times, each time restarted at once. Kills alternate at
    random between the whole driver (PySpark and its JVM) and the PySpark process alone, whose JVM
    must then exit by itself (else two drivers would share the checkpoint)."""
    cfg = {"bootstrap.servers": kafka_broker.bootstrap_servers}
    result = crash_drill(cfg, pg_url, tmp_path, events=None, rate=100, kills=3, seed=32, trigger_seconds=1,
                         timeout=300)
    print(result.report())
    assert [r.caught_up_s is not None for r in result.recoveries] == [True] * 3
    assert result.stats.failed == 0 and result.stats.delivered == result.stats.sent
    assert result.differences == {}  # every table exactly equal to the one computed from the topics
    assert result.rows["orders_raw"] > 300 and result.rows["rejected"] == 0
