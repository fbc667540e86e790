"""The exactly-once sinks on a real PostgreSQL: replays change nothing, failures leave nothing,
and the windowed tables add up each order and view once."""

import logging
from decimal import Decimal

import psycopg
import pyarrow as pa
import pytest

from eventflow_assets.processing.sinks import (
    BATCH_LINE,
    REPLAYED,
    SINKS,
    BatchTimes,
    ExactlyOnceSink,
    count_views,
    parse_batch_line,
)
from eventflow_assets.storage.schema import apply_schema
from eventflow_assets_tests.processing.batches import TS, WINDOW_END, WINDOW_START, batch, order, orders, reject, view


def _rows(url, sql):
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def _sink(url, topic="orders"):
    apply_schema(url)
    return ExactlyOnceSink(url, topic, SINKS[topic])


def test_replayed_batch_writes_nothing(pg_url):
    sink = _sink(pg_url)
    assert sink.write(orders("a", "b"), batch_id=0) == {"orders_raw": 2, "revenue_by_currency_5min": 1,
                                                        "conversion_funnel_5min": 1}
    assert sink.write(orders("a", "b"), batch_id=0) is None
    assert sink.write(orders("b", "c"), batch_id=1)["orders_raw"] == 1  # "b" repeated: kept once
    assert _rows(pg_url, 'SELECT order_id, price, currency, "timestamp" FROM orders_raw ORDER BY 1') == [
        (oid, Decimal("149.99"), "EUR", TS) for oid in ("a", "b", "c")]
    assert _rows(pg_url, "SELECT query_name, batch_id, row_count, table_rows FROM stream_batches ORDER BY 2") == [
        ("orders", 0, 4, {"orders_raw": 2, "revenue_by_currency_5min": 1, "conversion_funnel_5min": 1}),
        ("orders", 1, 3, {"orders_raw": 1, "revenue_by_currency_5min": 1, "conversion_funnel_5min": 1})]


def test_windows_add_up_each_order_once_across_batches(pg_url):
    sink = _sink(pg_url)
    sink.write(batch("orders", [order("a", "10.00"), order("b", "20.00", user="u2")]), 0)
    sink.write(batch("orders", [order("b", "20.00", user="u2"), order("c", "0.01"), order("d", "5.00", currency="USD")]),
               1)
    assert _rows(pg_url, "SELECT window_start, window_end, currency, total_revenue, order_count, avg_order_value "
                         "FROM revenue_by_currency_5min ORDER BY currency") == [
        (WINDOW_START, WINDOW_END, "EUR", Decimal("30.01"), 3, Decimal("10.00")),
        (WINDOW_START, WINDOW_END, "USD", Decimal("5.00"), 1, Decimal("5.00"))]
    assert _rows(pg_url, "SELECT user_id, view_count, order_count FROM conversion_funnel_5min ORDER BY 1") == [
        ("u1", 0, 3), ("u2", 0, 1)]


def test_views_are_counted_per_window_and_user_and_added_to_the_orders(pg_url):
    sink = _sink(pg_url, "product-view")
    _sink(pg_url).write(orders("a"), 0)
    assert sink.write(batch("product-view", [view("u1", 0), view("u1", 1), view("u3", 2)]), 0) == \
        {"conversion_funnel_5min": 2}
    sink.write(batch("product-view", [view("u1", 3)]), 1)
    assert _rows(pg_url, "SELECT user_id, view_count, order_count FROM conversion_funnel_5min ORDER BY 1") == [
        ("u1", 3, 1), ("u3", 1, 0)]


def test_count_views_groups_by_window_and_user():
    counted = count_views(batch("product-view", [view("u1"), view("u2"), view("u1")]).drop_columns(["reason"]))
    assert sorted(counted.to_pylist(), key=lambda r: r["user_id"]) == [
        {"window_start": WINDOW_START, "window_end": WINDOW_END, "user_id": "u1", "view_count": 2},
        {"window_start": WINDOW_START, "window_end": WINDOW_END, "user_id": "u2", "view_count": 1}]


def test_rejects_of_any_query_go_to_rejected_events_once(pg_url):
    sink = _sink(pg_url)
    rows = [order("a"), reject("orders", 7, "invalid JSON")]
    assert sink.write(batch("orders", rows), 0)["rejected_events"] == 1
    user_events = ExactlyOnceSink(pg_url, "user-events", SINKS["user-events"])
    assert user_events.write(batch("user-events", [reject("user-events", 3, "missing field: userId")]), 0) == \
        {"rejected_events": 1}
    assert user_events.write(batch("user-events", [reject("user-events", 3, "missing field: userId")]), 1) == {}
    assert _rows(pg_url, 'SELECT topic, "offset", reason, payload FROM rejected_events ORDER BY 1') == [
        ("orders", 7, "invalid JSON", "not json"), ("user-events", 3, "missing field: userId", "not json")]
    assert _rows(pg_url, "SELECT order_id FROM orders_raw") == [("a",)]


def test_failed_batch_leaves_nothing_and_can_be_retried(pg_url):
    sink = _sink(pg_url)
    with pytest.raises(psycopg.errors.CheckViolation):
        sink.write(orders("x", "y", price="-1.00"), batch_id=5)  # violates price > 0 mid-merge
    assert _rows(pg_url, "SELECT count(*) FROM orders_raw") == [(0,)]
    assert _rows(pg_url, "SELECT count(*) FROM stream_batches") == [(0,)]
    assert sink.write(orders("x", "y"), batch_id=5)["orders_raw"] == 2


def test_text_that_needs_quoting_survives_copy(pg_url):
    tricky = 'a,"b"\nc'
    table = orders("q1")
    table = table.set_column(table.schema.get_field_index("user_id"), "user_id", pa.array([tricky]))
    _sink(pg_url).write(table, 0)
    assert _rows(pg_url, "SELECT user_id FROM orders_raw") == [(tricky,)]


def test_a_new_checkpoint_starts_a_new_ledger(pg_url):
    """Batch ids restart at 0 in a new checkpoint; its batch 0 must be written, not taken for a replay."""
    sink = _sink(pg_url)
    assert sink.write(orders("a"), batch_id=0, checkpoint="checkpoint-1")["orders_raw"] == 1
    assert sink.write(orders("b"), batch_id=0, checkpoint="checkpoint-1") is None
    assert sink.write(orders("b"), batch_id=0, checkpoint="checkpoint-2")["orders_raw"] == 1
    assert _rows(pg_url, "SELECT order_id FROM orders_raw ORDER BY 1") == [("a",), ("b",)]


def test_an_order_replayed_by_a_new_checkpoint_is_not_counted_again(pg_url):
    sink = _sink(pg_url)
    sink.write(orders("a", "b"), batch_id=0, checkpoint="checkpoint-1")
    sink.write(orders("a", "b", "c"), batch_id=0, checkpoint="checkpoint-2")
    assert _rows(pg_url, "SELECT total_revenue, order_count FROM revenue_by_currency_5min") == [
        (Decimal("449.97"), 3)]



def test_the_batch_line_gives_its_figures_back():
    line = "2026-12-02 03:00:00,123 eventflow.sinks INFO " + BATCH_LINE % (
        "product-view", 7, {"conversion_funnel_5min": 12}, 40, 4096, 1.23456, 0.0444)
    assert parse_batch_line(line + "\n") == BatchTimes("product-view", 7, 40, 4096, 1.235, 0.044, replayed=False)
    assert parse_batch_line(BATCH_LINE % ("orders", 3, REPLAYED, 5, 100, 0.5, 0.01)) == BatchTimes(
        "orders", 3, 5, 100, 0.5, 0.01, replayed=True)
    assert parse_batch_line("2026-12-02 03:00:00,123 eventflow.streaming INFO started orders") is None


def test_each_batch_logs_what_the_driver_collected_and_where_its_time_went(spark, pg_url, caplog):
    """Through a real DataFrame: rows and Arrow bytes as collected, then the replay of the same batch."""
    sink = _sink(pg_url)
    frame = spark.createDataFrame(orders("a", "b"))
    collected = frame.select(*SINKS["orders"].columns).toArrow()
    caplog.set_level(logging.INFO, logger="eventflow.sinks")
    sink(frame, 0)
    sink(frame, 0)
    lines = [parse_batch_line(r.getMessage()) for r in caplog.records if r.name == "eventflow.sinks"]
    assert [(b.query, b.batch_id, b.rows, b.bytes, b.replayed) for b in lines] == [
        ("orders", 0, 2, collected.nbytes, False), ("orders", 0, 2, collected.nbytes, True)]
    assert lines[0].collect_s > 0 and lines[0].commit_s > 0
    assert _rows(pg_url, "SELECT count(*) FROM orders_raw") == [(2,)]
