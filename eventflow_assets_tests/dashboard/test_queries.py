"""The dashboard's queries against a real PostgreSQL, on dataset.py's hand-built rows; every
expected value is worked out by hand in the comments."""

from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest

from eventflow_assets.dashboard import queries
from eventflow_assets.storage.schema import apply_schema
from eventflow_assets_tests.dashboard.dataset import load_hand, ts

D = Decimal


@pytest.fixture
def hand_db(pg_url):
    apply_schema(pg_url)
    load_hand(pg_url)
    return pg_url


@pytest.fixture
def conn(hand_db):
    with psycopg.connect(hand_db) as c:
        c.execute("SET TIME ZONE 'UTC'")
        yield c


def test_currency_totals_sum_every_window_of_all_time(conn):
    assert queries.currency_totals(conn) == [
        {"currency": "EUR", "total_revenue": D("233.33"), "order_count": 2},     # 200.00 + 33.33
        {"currency": "GBP", "total_revenue": D("37.10"), "order_count": 4},      # 2.00 + 35.10; 1 + 3
        {"currency": "JPY", "total_revenue": D("12345.67"), "order_count": 1},
        {"currency": "USD", "total_revenue": D("126.49"), "order_count": 5},     # 5.00 + 1.00 + 100.50 + 19.99
    ]


def test_revenue_windows_are_the_latest_three_hours_with_usd_values(conn):
    rows = [(r["window_start"], r["currency"], r["total_revenue"], r["order_count"], r["avg_order_value"],
             r["total_revenue_usd"]) for r in queries.revenue_windows(conn)]
    assert rows == [
        (ts("2026-01-10 09:15"), "GBP", D("2.00"), 1, D("2.00"), D("2.54")),          # 2.00 x 1.27
        (ts("2026-01-10 12:00"), "EUR", D("200.00"), 1, D("200.00"), D("216.00")),    # 200 x 1.08
        (ts("2026-01-10 12:00"), "USD", D("100.50"), 2, D("50.25"), D("100.50")),
        (ts("2026-01-10 12:05"), "GBP", D("35.10"), 3, D("11.70"), D("44.58")),       # 44.577
        (ts("2026-01-10 12:05"), "USD", D("19.99"), 1, D("19.99"), D("19.99")),
        (ts("2026-01-10 12:10"), "EUR", D("33.33"), 1, D("33.33"), D("36.00")),       # 35.9964
        (ts("2026-01-10 12:10"), "JPY", D("12345.67"), 1, D("12345.67"), None),       # no rate
    ]
    assert all(r["window_end"] - r["window_start"] == timedelta(minutes=5) for r in queries.revenue_windows(conn))
    # A shorter span: the windows after 11:55 only.
    assert [r["window_start"] for r in queries.revenue_windows(conn, timedelta(minutes=15))] == \
        [ts("2026-01-10 12:00")] * 2 + [ts("2026-01-10 12:05")] * 2 + [ts("2026-01-10 12:10")] * 2


def test_funnel_windows_count_views_orders_and_users(conn):
    assert queries.funnel_windows(conn) == [
        # u1 3/1, u2 2/0, u3 0/1: 5 views, 2 orders; viewers u1 u2, buyers u1 u3
        {"window_start": ts("2026-01-10 12:00"), "views": 5, "orders": 2, "viewers": 2, "buyers": 2},
        # u1 4/0, u2 1/1
        {"window_start": ts("2026-01-10 12:05"), "views": 5, "orders": 1, "viewers": 2, "buyers": 1},
    ]


def test_top_converting_users_by_rate_then_orders(conn):
    assert [(r["user_id"], r["view_count"], r["order_count"], r["conversion_rate"])
            for r in queries.top_converting_users(conn, limit=4)] == [
        ("u4", 2, 2, D("100.00")), ("u6", 1, 1, D("100.00")), ("u2", 3, 1, D("33.33")), ("u1", 7, 1, D("14.29"))]
    # u3 (no views, NULL rate) is never a top converter; u5 converts at 0.00.
    assert [r["user_id"] for r in queries.top_converting_users(conn, limit=10)] == ["u4", "u6", "u2", "u1", "u5"]


def test_segment_summary_in_spend_order(conn):
    assert [(r["segment"], r["users"], r["revenue_usd"], r["avg_spend_usd"], r["orders"])
            for r in queries.segment_summary(conn)] == [
        ("VIP", 1, D("1500.00"), D("1500.00"), 4), ("Premium", 0, D("0.00"), None, 0),
        ("Regular", 2, D("300.00"), D("150.00"), 5), ("New", 3, D("75.00"), D("25.00"), 3)]


def test_stream_latest_is_each_querys_last_batch(conn):
    rows = {r["query_name"]: r for r in queries.stream_latest(conn)}
    assert list(rows) == sorted(queries.QUERIES)
    assert {r["query_name"]: r["batch_id"] for r in queries.stream_latest(conn, ("orders", "never-ran"))} == \
        {"orders": 7, "never-ran": None}
    assert {k: rows["orders"][k] for k in ("batch_id", "input_rows", "duration_ms", "lag_records",
                                               "watermark_delay_s")} == \
        {"batch_id": 7, "input_rows": 20, "duration_ms": 107, "lag_records": 7, "watermark_delay_s": D("630")}
    assert rows["orders"]["recorded_at"] - rows["orders"]["watermark"] == timedelta(seconds=630)
    # The latest batch is the one recorded last, whatever its checkpoint and batch id.
    assert (rows["product-view"]["batch_id"], rows["product-view"]["lag_records"]) == (1, 2)
    assert (rows["user-events"]["watermark"], rows["user-events"]["watermark_delay_s"],
            rows["user-events"]["lag_records"]) == (None, None, 0)


def test_stream_history_is_the_last_half_hour_oldest_first(conn):
    rows = [(r["query_name"], r["input_rows"], r["lag_records"], r["watermark_delay_s"])
            for r in queries.stream_history(conn)]
    assert rows == [
        ("product-view", 490, 1, D("630")),        # 20 min ago
        ("product-view", 186, 0, D("630")),        # 19 min
        ("product-view", 26, 0, D("630")),         # 18 min 40 s
        ("orders", 50, 9, D("630")),              # 10 min
        ("product-view", 10, 0, D("630")),         # 5 min, checkpoint c2
        ("orders", 20, 7, D("630")),              # 4 min: same time, by query name
        ("product-view", 30, 2, D("630")),
        ("user-events", 20, 0, None),
    ]  # the 2-hour-old batch is left out
    assert [r[:2] for r in rows[-4:]] == [(r["query_name"], r["input_rows"])
                                          for r in queries.stream_history(conn, limit=4)]
    assert [r["input_rows"] for r in queries.stream_history(conn, span=timedelta(minutes=15))] == [50, 10, 20, 30, 20]


def test_topic_throughput_from_read_offsets_between_batches(conn):
    rows = [(r["topic"], r["records"], r["events_per_s"]) for r in queries.topic_throughput(conn)]
    assert rows == [
        # c1 batch 2, 60 s after batch 1: orders 130+80 - (100+50) = 60 -> 1.00/s
        ("orders", 60, D("1.00")), ("product-view", 120, D("2.00")), ("user-events", 6, D("0.10")),
        # c1 batch 3, 20 s later: orders 225 - 210 = 15 -> 0.75/s; product-view 11 -> 0.55/s
        ("orders", 15, D("0.75")), ("product-view", 11, D("0.55")), ("user-events", 0, D("0.00")),
        # The orders query's batch 7, 360 s after its batch 6: 140 + 85 - 120 = 105 -> 0.29/s
        ("orders", 105, D("0.29")),
        # c2 batch 1, 60 s after c2 batch 0 (not after c1's offsets): 40 - 10 = 30 -> 0.50/s
        ("orders", 30, D("0.50")),
    ]


def test_rejected_rate_over_the_last_hour(conn):
    # product-view 490 + 186 + 26 + 10 + 30, orders 50 + 20, user-events 20 records; 5 + 3 + 1 + 0 + 2
    # rejected; the 2-hour-old batch left out.
    assert queries.rejected_rate(conn) == {"rejected": 11, "records": 832}
    assert queries.rejected_rate(conn, span=timedelta(minutes=10)) == {"rejected": 2, "records": 80}


def test_rejected_reasons_group_by_rule_without_the_quoted_value(conn):
    assert [(r["topic"], r["reason"], r["n"]) for r in queries.rejected_reasons(conn)] == [
        ("orders", "invalid value: currency must be one of USD, EUR, GBP, CAD, AUD", 2),
        ("product-view", "invalid JSON", 2),
        ("orders", "invalid value: timestamp is not ISO-8601 with offset", 1),
        ("product-view", "invalid JSON: text after the JSON value", 1),
        ("user-events", "missing field: userId", 1),
    ]  # the 2-hour-old one is left out
    # Only the latest 3 rejected records (4, 5 and 6 minutes ago) are counted.
    assert [(r["topic"], r["reason"], r["n"]) for r in queries.rejected_reasons(conn, sample=3)] == [
        ("product-view", "invalid JSON", 1), ("product-view", "invalid JSON: text after the JSON value", 1),
        ("user-events", "missing field: userId", 1)]


def test_snapshot_figures_agree_with_the_rows(hand_db):
    snap = queries.read_snapshot(hand_db)
    assert snap.recent_orders == 10                          # 1 + 1 + 2 + 3 + 1 + 1 + 1
    assert snap.recent_revenue_usd == D("419.61")            # 2.54 + 216 + 100.50 + 44.58 + 19.99 + 36, no JPY
    assert snap.recent_avg_order_usd == D("46.62")           # 419.61 / 9 rated orders = 46.6233
    assert snap.conversion == (10, 3, D("30.00"))
    assert snap.rejected == {"rejected": 11, "records": 832}
    assert snap.read_at.utcoffset() == timedelta(0)


def test_snapshot_of_empty_tables(pg_url):
    apply_schema(pg_url)
    snap = queries.read_snapshot(pg_url)
    assert (snap.totals, snap.revenue, snap.funnel, snap.top_users, snap.history, snap.throughput, snap.reasons) == \
        ([], [], [], [], [], [], [])
    assert len(snap.segments) == 0 and [r["batch_id"] for r in snap.latest] == [None] * 3
    assert (snap.recent_orders, snap.recent_revenue_usd, snap.recent_avg_order_usd, snap.conversion) == \
        (0, D(0), None, (0, 0, None))
    assert snap.rejected == {"rejected": 0, "records": 0}


def test_queries_are_bounded_and_indexed(hand_db):
    """No query reads orders_raw, and the growing tables are read through their indexes."""
    from eventflow_assets.storage.postgres import SQL_DIR

    for path in sorted((SQL_DIR / "dashboard").glob("*.sql")):
        code = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("--"))
        assert "orders_raw" not in code, path.name
    with psycopg.connect(hand_db) as conn:
        conn.execute("SET enable_seqscan = off")  # what the planner picks once the tables are large
        for name, params in [("revenue_windows", {"span": timedelta(hours=3)}),
                             ("stream_history", {"queries": list(queries.QUERIES), "span": timedelta(minutes=30),
                                                 "limit": 10}),
                             ("rejected_reasons", {"span": timedelta(hours=1), "limit": 5, "sample": 10})]:
            sql = (SQL_DIR / "dashboard" / f"{name}.sql").read_text()
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, params))
            assert "Seq Scan" not in plan, (name, plan)
