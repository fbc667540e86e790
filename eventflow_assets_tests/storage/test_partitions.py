"""orders_raw partitioned by UTC day on a real PostgreSQL: the migration moves the existing rows
into their days, the sink makes the days a batch needs and still counts each order once, and an
archived day's orders are not added again."""

import csv
import gzip
import shutil
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import psycopg

from eventflow_assets.processing.sinks import SINKS, ExactlyOnceSink
from eventflow_assets.storage.partitions import archive
from eventflow_assets.storage.postgres import read_sql
from eventflow_assets.storage.schema import MIGRATIONS_DIR, apply_schema
from eventflow_assets_tests.processing.batches import batch, order

UTC = timezone.utc


def _rows(url, query, params=()):
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def _partitions(url):
    """{partition: its bounds as PostgreSQL prints them} of orders_raw."""
    return dict(_rows(url, "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
                           "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'orders_raw'::regclass"))


def test_the_migration_moves_existing_orders_into_their_day_partitions(pg_url, tmp_path):
    old = tmp_path / "m"
    old.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("000[1-6]_*.sql")):
        shutil.copy(path, old / path.name)
    assert apply_schema(pg_url, old) == [1, 2, 3, 4, 5, 6]
    stamps = [datetime(2026, 3, 1, 23, 59, 59, 999000, tzinfo=UTC), datetime(2026, 3, 2, 0, 0, tzinfo=UTC),
              datetime(2026, 3, 2, 12, 30, 1, 500000, tzinfo=UTC), datetime(2026, 3, 5, 7, 0, tzinfo=UTC)]
    ingested = datetime(2026, 3, 6, 8, 0, tzinfo=UTC)
    with psycopg.connect(pg_url) as conn:
        for n, ts in enumerate(stamps):
            conn.execute("INSERT INTO orders_raw VALUES (%s, %s, 'p1', %s, 'EUR', %s, 2, %s, %s)",
                         (f"o{n}", f"u{n}", Decimal("10.05") + n, ts, 100 + n, ingested))

    assert apply_schema(pg_url) == [7]

    assert _rows(pg_url, "SELECT tableoid::regclass::text, order_id, user_id, product_id, price, currency, "
                         '"timestamp", kafka_partition, kafka_offset, ingested_at FROM orders_raw ORDER BY order_id') == [
        ("orders_raw_p20260301", "o0", "u0", "p1", Decimal("10.05"), "EUR", stamps[0], 2, 100, ingested),
        ("orders_raw_p20260302", "o1", "u1", "p1", Decimal("11.05"), "EUR", stamps[1], 2, 101, ingested),
        ("orders_raw_p20260302", "o2", "u2", "p1", Decimal("12.05"), "EUR", stamps[2], 2, 102, ingested),
        ("orders_raw_p20260305", "o3", "u3", "p1", Decimal("13.05"), "EUR", stamps[3], 2, 103, ingested)]
    parts = _partitions(pg_url)
    with psycopg.connect(pg_url) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        assert conn.execute("SELECT pg_get_expr(relpartbound, oid) FROM pg_class "
                            "WHERE relname = 'orders_raw_p20260302'").fetchone() == (
            "FOR VALUES FROM ('2026-03-02 00:00:00+00') TO ('2026-03-03 00:00:00+00')",)
        assert conn.execute("SELECT relkind FROM pg_class WHERE relname = 'orders_raw'").fetchone() == ("p",)
        assert conn.execute("SELECT to_regclass('orders_raw_unpartitioned')").fetchone() == (None,)
    # The days the rows needed, and yesterday to three days ahead.
    today = datetime.now(UTC).date()
    assert set(parts) == {"orders_raw_p20260301", "orders_raw_p20260302", "orders_raw_p20260305"} | {
        f"orders_raw_p{today + timedelta(days=n):%Y%m%d}" for n in range(-1, 4)}
    # Each partition has the key and the indexes of the parent.
    assert sorted(r[0] for r in _rows(pg_url, "SELECT indexdef FROM pg_indexes WHERE tablename = 'orders_raw_p20260305'")) == [
        'CREATE INDEX orders_raw_p20260305_timestamp_idx ON public.orders_raw_p20260305 USING btree ("timestamp")',
        "CREATE INDEX orders_raw_p20260305_user_id_idx ON public.orders_raw_p20260305 USING btree (user_id)",
        'CREATE UNIQUE INDEX orders_raw_p20260305_pkey ON public.orders_raw_p20260305 USING btree (order_id, "timestamp")']
    assert apply_schema(pg_url) == [] and _partitions(pg_url) == parts


def _sink(url):
    apply_schema(url)
    return ExactlyOnceSink(url, "orders", SINKS["orders"])


def test_orders_of_days_without_a_partition_land_in_partitions_the_batch_makes(pg_url):
    sink = _sink(pg_url)
    before = set(_partitions(pg_url))
    old = datetime(2025, 1, 31, 23, 59, 59, 999000, tzinfo=UTC)
    rows = [order("a", "10.00", ts=old), order("b", "20.00", ts=old + timedelta(milliseconds=1)),
            order("c", "30.00")]  # 2026-11-24 11:00:05.123
    assert sink.write(batch("orders", rows), 0)["orders_raw"] == 3
    assert set(_partitions(pg_url)) - before == {"orders_raw_p20250131", "orders_raw_p20250201",
                                                 "orders_raw_p20261124"}
    assert _rows(pg_url, "SELECT order_id, tableoid::regclass::text, price FROM orders_raw ORDER BY 1") == [
        ("a", "orders_raw_p20250131", Decimal("10.00")), ("b", "orders_raw_p20250201", Decimal("20.00")),
        ("c", "orders_raw_p20261124", Decimal("30.00"))]
    # A later batch on those days finds their partitions.
    assert sink.write(batch("orders", [order("d", "1.00", ts=old)]), 1)["orders_raw"] == 1
    assert _rows(pg_url, "SELECT count(*) FROM orders_raw_p20250131") == [(2,)]


def test_a_replay_from_a_new_checkpoint_adds_nothing_across_partitions(pg_url):
    sink = _sink(pg_url)
    day2 = datetime(2026, 11, 25, 0, 0, 1, tzinfo=UTC)
    first = batch("orders", [order("a", "10.00"), order("b", "20.00", ts=day2)])
    assert sink.write(first, 0, checkpoint="c1") == {"orders_raw": 2, "revenue_by_currency_5min": 1,
                                                     "conversion_funnel_5min": 1}
    # The new checkpoint reads the same orders again, and one new one.
    again = batch("orders", [order("a", "10.00"), order("b", "20.00", ts=day2), order("c", "5.00")])
    assert sink.write(again, 0, checkpoint="c2") == {"orders_raw": 1, "revenue_by_currency_5min": 1,
                                                     "conversion_funnel_5min": 1}
    assert _rows(pg_url, "SELECT order_id, tableoid::regclass::text FROM orders_raw ORDER BY 1") == [
        ("a", "orders_raw_p20261124"), ("b", "orders_raw_p20261125"), ("c", "orders_raw_p20261124")]
    # batches.order puts every order in the 11:00 window: 10 + 20 + 5, three orders, each once.
    assert _rows(pg_url, "SELECT currency, total_revenue, order_count FROM revenue_by_currency_5min") == [
        ("EUR", Decimal("35.00"), 3)]
    assert _rows(pg_url, "SELECT user_id, order_count FROM conversion_funnel_5min") == [("u1", 3)]


def test_one_order_id_under_two_event_times_is_kept_and_the_check_names_it(pg_url):
    sink = _sink(pg_url)
    sink.write(batch("orders", [order("a", "10.00"), order("b", "10.00")]), 0)
    sink.write(batch("orders", [order("a", "10.00", ts=datetime(2026, 11, 24, 12, tzinfo=UTC))]), 1)
    assert _rows(pg_url, read_sql("checks/duplicate_order_ids.sql")) == [
        (3, 2, [{"order_id": "a", "rows": 2}])]


def test_orders_of_an_archived_day_are_not_added_again(pg_url, tmp_path):
    sink = _sink(pg_url)
    old = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
    sink.write(batch("orders", [order("a", "10.00", ts=old), order("b", "20.00")]), 0, checkpoint="c1")
    run = archive(pg_url, keep_days=30, directory=tmp_path, today=date(2026, 11, 24))
    assert [(a.day, a.rows) for a in run.archived] == [(date(2026, 10, 1), 1)]

    replay = batch("orders", [order("a", "10.00", ts=old), order("b", "20.00"),
                              order("z", "7.00", ts=old + timedelta(hours=1))])
    assert sink.write(replay, 0, checkpoint="c2") == {}  # "b" is there; "a" and "z" are of the archived day
    assert "orders_raw_p20261001" not in _partitions(pg_url)
    assert _rows(pg_url, "SELECT order_id FROM orders_raw") == [("b",)]
    # batches.order puts both first orders in one window: counted once each, nothing from the replay.
    assert _rows(pg_url, "SELECT total_revenue, order_count FROM revenue_by_currency_5min") == [(Decimal("30.00"), 2)]
    with gzip.open(tmp_path / "2026-10-01.csv.gz", "rt", newline="") as f:
        assert [r[0] for r in csv.reader(f)] == ["order_id", "a"]
