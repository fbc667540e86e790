"""The exactly-once sink on a real PostgreSQL: replays change nothing, failures leave nothing."""

from datetime import datetime, timezone
from decimal import Decimal

import psycopg
import pyarrow as pa
import pytest

from eventflow_assets.processing.sinks import ORDERS_RAW, REVENUE, ExactlyOnceSink
from eventflow_assets.storage.schema import apply_schema

TS = datetime(2026, 11, 24, 11, 0, 5, 123000, tzinfo=timezone.utc)


def _orders(*ids, price="149.99"):
    n = len(ids)
    return pa.table({
        "order_id": list(ids), "user_id": ["u1"] * n, "product_id": ["p1"] * n,
        "price": pa.array([Decimal(price)] * n, pa.decimal128(12, 2)), "currency": ["EUR"] * n,
        "timestamp": pa.array([TS] * n, pa.timestamp("us", tz="UTC")),
        "kafka_partition": pa.array([1] * n, pa.int32()), "kafka_offset": pa.array(range(n), pa.int64()),
    })


def _rows(url, sql):
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_replayed_batch_writes_nothing(pg_url):
    apply_schema(pg_url)
    sink = ExactlyOnceSink(pg_url, "orders_raw", ORDERS_RAW)
    assert sink.write(_orders("a", "b"), batch_id=0) == 2
    assert sink.write(_orders("a", "b"), batch_id=0) is None
    assert sink.write(_orders("b", "c"), batch_id=1) == 1  # "b" repeated: kept once
    assert _rows(pg_url, 'SELECT order_id, price, currency, "timestamp" FROM orders_raw ORDER BY 1') == [
        (oid, Decimal("149.99"), "EUR", TS) for oid in ("a", "b", "c")]
    assert _rows(pg_url, "SELECT query_name, batch_id, row_count FROM stream_batches ORDER BY 2") == [
        ("orders_raw", 0, 2), ("orders_raw", 1, 1)]


def test_failed_batch_leaves_nothing_and_can_be_retried(pg_url):
    apply_schema(pg_url)
    sink = ExactlyOnceSink(pg_url, "orders_raw", ORDERS_RAW)
    with pytest.raises(psycopg.errors.CheckViolation):
        sink.write(_orders("x", "y", price="-1.00"), batch_id=5)  # violates price > 0 mid-merge
    assert _rows(pg_url, "SELECT count(*) FROM orders_raw") == [(0,)]
    assert _rows(pg_url, "SELECT count(*) FROM stream_batches") == [(0,)]
    assert sink.write(_orders("x", "y"), batch_id=5) == 2


def test_update_mode_rows_replace_the_window(pg_url):
    apply_schema(pg_url)
    sink = ExactlyOnceSink(pg_url, "revenue_by_currency_5min", REVENUE)
    start, end = datetime(2026, 11, 24, 11, 0, tzinfo=timezone.utc), datetime(2026, 11, 24, 11, 5, tzinfo=timezone.utc)

    def window(total, count, avg):
        return pa.table({"window_start": pa.array([start], pa.timestamp("us", tz="UTC")),
                         "window_end": pa.array([end], pa.timestamp("us", tz="UTC")), "currency": ["USD"],
                         "total_revenue": pa.array([Decimal(total)], pa.decimal128(16, 2)),
                         "order_count": pa.array([count], pa.int64()),
                         "avg_order_value": pa.array([Decimal(avg)], pa.decimal128(16, 2))})
    sink.write(window("10.00", 1, "10.00"), 0)
    sink.write(window("30.00", 3, "10.00"), 1)
    assert _rows(pg_url, "SELECT total_revenue, order_count FROM revenue_by_currency_5min") == [(Decimal("30.00"), 3)]


def test_text_that_needs_quoting_survives_copy(pg_url):
    apply_schema(pg_url)
    tricky = 'a,"b"\nc'
    table = _orders("q1").set_column(1, "user_id", pa.array([tricky]))
    ExactlyOnceSink(pg_url, "orders_raw", ORDERS_RAW).write(table, 0)
    assert _rows(pg_url, "SELECT user_id FROM orders_raw") == [(tricky,)]


def test_a_new_checkpoint_starts_a_new_ledger(pg_url):
    """Batch ids restart at 0 in a new checkpoint; its batch 0 must be written, not taken for a replay."""
    apply_schema(pg_url)
    sink = ExactlyOnceSink(pg_url, "orders_raw", ORDERS_RAW)
    assert sink.write(_orders("a"), batch_id=0, checkpoint="checkpoint-1") == 1
    assert sink.write(_orders("b"), batch_id=0, checkpoint="checkpoint-1") is None
    assert sink.write(_orders("b"), batch_id=0, checkpoint="checkpoint-2") == 1
    assert _rows(pg_url, "SELECT order_id FROM orders_raw ORDER BY 1") == [("a",), ("b",)]


def test_checkpoint_id_is_read_from_spark_metadata(tmp_path):
    from eventflow_assets.processing.sinks import checkpoint_id

    (tmp_path / "metadata").write_text('{"id":"4f0b6c1e-2a55-4c1e-9d43-1b0e7f3f0a11"}')
    assert checkpoint_id(tmp_path) == "4f0b6c1e-2a55-4c1e-9d43-1b0e7f3f0a11"
