"""The streaming queries end to end: real broker, real SparkSession, real PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import psycopg
from confluent_kafka import Producer

from eventflow_assets.ingestion.generator import Anomalies, EventGenerator
from eventflow_assets.ingestion.producer import produce
from eventflow_assets.processing.queries import StreamConfig
from eventflow_assets.processing.runner import run_streaming
from eventflow_assets_tests.helpers import read_all
from eventflow_assets_tests.processing.expected import actual_tables, expected_tables

TOPICS = ("user-events", "product-view", "orders")
T0 = datetime(2026, 11, 24, 11, 0, 0, tzinfo=timezone.utc).timestamp()


def ticking_clock(start: float, step: float):
    state = {"t": start - step}

    def clock() -> float:
        state["t"] += step
        return state["t"]
    return clock


def run_available_now(spark, endpoints, checkpoints, **overrides):
    run_streaming(spark, endpoints, checkpoints, StreamConfig(available_now=True, **overrides))


def resend(bootstrap: str, records) -> None:
    """Publish copies of records (a producer retrying upstream): same key, same value."""
    p = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    for r in records:
        p.produce(r.topic(), r.value(), r.key())
    assert p.flush(30) == 0


def progress_totals(pg_url) -> dict:
    with psycopg.connect(pg_url) as conn:
        return {name: (late, rejected) for name, late, rejected in conn.execute(
            "SELECT query_name, sum(late_rows), sum(rejected_rows) FROM stream_progress GROUP BY 1")}


def test_tables_are_exact_for_in_order_out_of_order_late_duplicate_and_malformed_events(
        spark, endpoints, kafka_broker, pg_url, tmp_path):
    cfg = {"bootstrap.servers": kafka_broker.bootstrap_servers}
    # Phase 1: 6,000 events over 20 minutes (4 windows), 10% out of order, 3% malformed.
    gen = EventGenerator(seed=21, clock=ticking_clock(T0, 0.2),
                         anomalies=Anomalies(out_of_order=0.1, malformed=0.03))
    assert produce(cfg, gen, count=6000).failed == 0
    first = read_all(kafka_broker.bootstrap_servers, TOPICS)
    resend(kafka_broker.bootstrap_servers, [r for r in first if r.topic() == "orders"][:200])
    run_available_now(spark, endpoints, tmp_path / "chk")

    # Phase 2: 600 events 40-45 minutes after T0 (the watermark moves to ~T0+35min), then
    # phase 3: 300 events from the first 10 minutes, now older than the watermark: late.
    assert produce(cfg, EventGenerator(seed=22, clock=ticking_clock(T0 + 2400, 0.5)), count=600).failed == 0
    run_available_now(spark, endpoints, tmp_path / "chk")
    before_late = {(r.topic(), r.partition(), r.offset()) for r in read_all(kafka_broker.bootstrap_servers, TOPICS)}
    assert produce(cfg, EventGenerator(seed=23, clock=ticking_clock(T0 + 30, 1.0)), count=300).failed == 0
    run_available_now(spark, endpoints, tmp_path / "chk")

    records = read_all(kafka_broker.bootstrap_servers, TOPICS)
    late = {(r.topic(), r.partition(), r.offset()) for r in records} - before_late
    expected = expected_tables(records, late)
    with psycopg.connect(pg_url) as conn:
        actual = actual_tables(conn)
    assert actual["orders_raw"] == expected["orders_raw"]
    assert actual["revenue"] == expected["revenue"]
    assert actual["funnel"] == expected["funnel"]
    assert actual["rejected"] == expected["rejected"]
    assert len(expected["revenue"]) > 10 and len(expected["rejected"]) > 100  # the data really spans all cases

    late_orders = sum(1 for t, _, _ in late if t == "orders")
    late_views = sum(1 for t, _, _ in late if t == "product-view")
    totals = progress_totals(pg_url)
    assert totals["orders"][0] == late_orders
    assert totals["product-view"][0] == late_views
    assert totals["user-events"][0] == 0  # no state, so nothing is ever late
    for topic in TOPICS:
        assert totals[topic][1] == sum(1 for t, _, _ in expected["rejected"] if t == topic)


def test_reject_reasons_are_recorded(spark, endpoints, kafka_broker, pg_url, tmp_path):
    p = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers})
    good = {"orderId": "3f1c2a9e-8b7d-4c6e-9a1b-2c3d4e5f6a7b", "userId": "u1", "productId": "p1",
            "price": 10.5, "currency": "USD", "timestamp": "2026-11-24T11:00:05.123Z"}
    bad = [b"not json", json.dumps({**good, "currency": "XYZ"}).encode(), json.dumps({**good, "price": -1}).encode()]
    for value in [json.dumps(good).encode(), *bad]:
        p.produce("orders", value, b"u1", partition=0)
    p.produce("user-events", b'{"eventId": 1}', b"u2", partition=0)
    assert p.flush(30) == 0
    run_available_now(spark, endpoints, tmp_path / "chk")
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute('SELECT topic, "offset", reason, payload FROM rejected_events ORDER BY 1, 2').fetchall()
        assert conn.execute("SELECT order_id FROM orders_raw").fetchall() == [(good["orderId"],)]
    assert rows == [
        ("orders", 1, "invalid JSON", "not json"),
        ("orders", 2, "invalid value: currency must be one of USD, EUR, GBP, CAD, AUD: XYZ", bad[1].decode()),
        ("orders", 3, "invalid value: price must be > 0: -1", bad[2].decode()),
        ("user-events", 0, "missing field: userId", '{"eventId": 1}'),
    ]


def test_progress_records_lag_against_the_real_partition_ends(spark, endpoints, kafka_broker, pg_url, tmp_path):
    cfg = {"bootstrap.servers": kafka_broker.bootstrap_servers}
    assert produce(cfg, EventGenerator(seed=41, clock=ticking_clock(T0, 0.1)), count=3000).failed == 0
    orders = sum(1 for r in read_all(kafka_broker.bootstrap_servers, ["orders"]))
    run_streaming(spark, endpoints, tmp_path / "chk", StreamConfig(available_now=True, max_offsets_per_trigger=250),
                  only=("orders",))
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("""SELECT input_rows, (SELECT sum(value::bigint) FROM jsonb_each_text(lag))
                               FROM stream_progress WHERE query_name = 'orders' AND input_rows > 0
                               ORDER BY batch_id""").fetchall()
    # Spark's connector splits the limit over partitions by their lag and rounds down: at most 250 a batch.
    assert sum(r[0] for r in rows) == orders and max(r[0] for r in rows) <= 250
    assert len(rows) >= -(-orders // 250)
    read = 0
    for input_rows, lag in rows:
        read += input_rows
        assert lag == orders - read
