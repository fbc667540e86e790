"""Every sink-table check passes on consistent tables and fails, saying where, on broken ones.

The tables are written by hand here (not by the stream), so each test knows exactly which
window, currency, user or order id it broke.
"""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest
from confluent_kafka import Producer
from psycopg.types.json import Jsonb

from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.orchestration import checks
from eventflow_assets.orchestration.probes import newest_record_before
from eventflow_assets.orchestration.resources import EventFlowEndpoints


def at(hhmm: str) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return datetime(2026, 11, 24, h, m, 30, tzinfo=timezone.utc)


ORDERS = [  # order id, user, price, currency, time; windows 11:00, 11:05 (final) and 11:30 (open)
    ("o1", "u1", "10.00", "USD", "11:01"),
    ("o2", "u1", "5.50", "USD", "11:03"),
    ("o3", "u2", "7.25", "EUR", "11:04"),
    ("o4", "u2", "3.00", "USD", "11:07"),
    ("o5", "u3", "20.00", "GBP", "11:31"),
]
REVENUE = [("11:00", "USD", "15.50", 2), ("11:00", "EUR", "7.25", 1), ("11:05", "USD", "3.00", 1),
           ("11:30", "GBP", "20.00", 1)]
FUNNEL = [("11:00", "u1", 3, 2), ("11:00", "u2", 1, 1), ("11:05", "u2", 0, 1), ("11:05", "u4", 2, 0),
          ("11:30", "u3", 0, 1)]
# Latest watermark per query: the orders query's decides (windows ending at or before 11:20 are
# final); the product-view query's is further on and must not count.
WATERMARKS = {"product-view": "11:32", "orders": "11:20"}


def window(hhmm: str) -> datetime:
    return at(hhmm).replace(second=0)


@pytest.fixture
def db(eventflow_env, pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SELECT orders_raw_day_partition(%s)", (at("11:00").date(),))  # orders_raw's day of ORDERS
        for oid, user, price, currency, t in ORDERS:
            conn.execute('INSERT INTO orders_raw (order_id, user_id, product_id, price, currency, "timestamp") '
                         "VALUES (%s, %s, 'p1', %s, %s, %s)", (oid, user, Decimal(price), currency, at(t)))
        for w, currency, total, n in REVENUE:
            conn.execute("INSERT INTO revenue_by_currency_5min VALUES (%s, %s, %s, %s, %s, %s)",
                         (window(w), window(w) + timedelta(minutes=5), currency, Decimal(total), n,
                          Decimal(total) / n))
        for w, user, views, n in FUNNEL:
            conn.execute("INSERT INTO conversion_funnel_5min VALUES (%s, %s, %s, %s, %s)",
                         (window(w), window(w) + timedelta(minutes=5), user, views, n))
        for batch, (query, watermark) in enumerate(WATERMARKS.items()):
            conn.execute("INSERT INTO stream_progress (query_name, batch_id, watermark, input_rows, output_rows, "
                         "late_rows, rejected_rows, duration_ms) VALUES (%s, %s, %s, 0, 0, 0, 0, 0)",
                         (query, batch, window(watermark)))
        yield conn


def run(check):
    return check(eventflow=EventFlowEndpoints())


def values(result) -> dict:
    return {k: v.value for k, v in result.metadata.items()}


def test_revenue_agrees_with_orders_raw_in_final_windows(db):
    result = run(checks.revenue_agrees_with_orders_raw)
    assert result.passed
    assert values(result) == {"finalized_through": window("11:20").timestamp(), "compared": 3, "differing": 0}


def test_revenue_differences_name_window_and_currency(db):
    db.execute("UPDATE revenue_by_currency_5min SET total_revenue = 16.50 WHERE window_start = %s AND currency = 'USD'",
               (window("11:00"),))
    db.execute("DELETE FROM revenue_by_currency_5min WHERE window_start = %s", (window("11:05"),))
    db.execute("UPDATE revenue_by_currency_5min SET order_count = 9 WHERE currency = 'GBP'")  # open window
    result = run(checks.revenue_agrees_with_orders_raw)
    assert not result.passed
    assert result.description == "2 of 3 finalized (window, currency) pairs differ from orders_raw"
    assert values(result)["first_differences"] == [
        {"window_start": "2026-11-24T11:00:00+00:00", "currency": "USD", "table_revenue": 16.5,
         "orders_raw_revenue": 15.5, "table_orders": 2, "orders_raw_orders": 2},
        {"window_start": "2026-11-24T11:05:00+00:00", "currency": "USD", "table_revenue": None,
         "orders_raw_revenue": 3.0, "table_orders": None, "orders_raw_orders": 1},
    ]


def test_funnel_agrees_with_orders_raw_in_final_windows(db):
    result = run(checks.funnel_agrees_with_orders_raw)
    assert result.passed
    assert values(result) == {"finalized_through": window("11:20").timestamp(), "compared": 4, "differing": 0}


def test_funnel_differences_name_window_and_user(db):
    db.execute("UPDATE conversion_funnel_5min SET order_count = 2 WHERE window_start = %s AND user_id = 'u2'",
               (window("11:00"),))
    db.execute('INSERT INTO orders_raw (order_id, user_id, product_id, price, currency, "timestamp") '
               "VALUES ('o6', 'u4', 'p1', 1, 'USD', %s)", (at("11:06"),))
    result = run(checks.funnel_agrees_with_orders_raw)
    assert not result.passed
    assert values(result)["first_differences"] == [
        {"window_start": "2026-11-24T11:00:00+00:00", "user_id": "u2", "table_orders": 2, "orders_raw_orders": 1},
        {"window_start": "2026-11-24T11:05:00+00:00", "user_id": "u4", "table_orders": 0, "orders_raw_orders": 1},
    ]


def test_agreement_checks_pass_when_no_window_is_final_yet(db):
    db.execute("DELETE FROM stream_progress WHERE query_name = 'orders'")
    db.execute("UPDATE revenue_by_currency_5min SET total_revenue = 0")
    result = run(checks.revenue_agrees_with_orders_raw)
    assert result.passed and result.description == "no window is final yet (no watermark recorded)"


def test_duplicate_order_ids_are_listed(db):
    assert run(checks.no_duplicate_order_ids).passed
    db.execute("ALTER TABLE orders_raw DROP CONSTRAINT orders_raw_pkey")
    db.execute("INSERT INTO orders_raw SELECT * FROM orders_raw WHERE order_id IN ('o4', 'o2')")
    db.execute("INSERT INTO orders_raw SELECT * FROM orders_raw WHERE order_id = 'o2' LIMIT 1")
    result = run(checks.no_duplicate_order_ids)
    assert not result.passed
    assert values(result) == {"order_rows": 8, "distinct_order_ids": 5,
                              "first_duplicates": [{"order_id": "o2", "rows": 3}, {"order_id": "o4", "rows": 2}]}


def publish(bootstrap: str, topic: str, ago: timedelta, count: int = 1, partition: int = 1) -> None:
    """Records whose Kafka timestamp says they arrived ``ago``."""
    p = Producer({"bootstrap.servers": bootstrap})
    stamp = int((datetime.now(timezone.utc) - ago).timestamp() * 1000)
    for _ in range(count):
        p.produce(topic, b"{}", b"u1", partition=partition, timestamp=stamp)
    assert p.flush(30) == 0


FRESH = {t: checks.freshness_check(t) for t in ("orders_raw", "revenue_by_currency_5min", "conversion_funnel_5min")}
NOTHING_TO_JUDGE = "no records arrived between 5 and 2 minutes ago: nothing to judge"


def test_freshness_judges_records_old_enough_for_the_stream_to_have_written_them(db, kafka_broker):
    bootstrap = kafka_broker.bootstrap_servers
    provision_topics({"bootstrap.servers": bootstrap})
    db.execute("UPDATE orders_raw SET ingested_at = now() - interval '20 minutes'")
    assert run(FRESH["orders_raw"]).description == NOTHING_TO_JUDGE  # empty topics
    publish(bootstrap, "orders", timedelta(minutes=10))
    publish(bootstrap, "orders", timedelta(seconds=10))
    # Too old to matter, and too recent for a stream that may just be starting.
    assert run(FRESH["orders_raw"]).description == NOTHING_TO_JUDGE

    publish(bootstrap, "orders", timedelta(minutes=3), partition=2)
    stale = run(FRESH["orders_raw"])
    assert not stale.passed
    assert stale.description == ("a record arrived 3.0 minutes ago but `orders_raw` was last written 20.0 minutes "
                                 "ago: is streaming_job running?")
    db.execute("UPDATE orders_raw SET ingested_at = now() - interval '150 seconds' WHERE order_id = 'o1'")
    assert run(FRESH["orders_raw"]).passed  # written after that record arrived


def test_freshness_reads_only_the_topics_of_the_table(db, kafka_broker):
    bootstrap = kafka_broker.bootstrap_servers
    provision_topics({"bootstrap.servers": bootstrap})
    for table in ("revenue_by_currency_5min", "conversion_funnel_5min"):
        db.execute(f"UPDATE {table} SET updated_at = now() - interval '1 hour'")
    publish(bootstrap, "product-view", timedelta(minutes=3))
    assert not run(FRESH["conversion_funnel_5min"]).passed
    assert run(FRESH["revenue_by_currency_5min"]).description == NOTHING_TO_JUDGE


def test_under_heavy_traffic_older_records_count_as_arrived_at_the_cutoff(kafka_broker):
    bootstrap = kafka_broker.bootstrap_servers
    provision_topics({"bootstrap.servers": bootstrap})
    publish(bootstrap, "orders", timedelta(minutes=3), count=5)
    publish(bootstrap, "orders", timedelta(seconds=5), count=5)
    config = {"bootstrap.servers": bootstrap}
    cutoff = datetime.now(timezone.utc) - timedelta(minutes=1)
    within_scan = newest_record_before(config, ["orders"], cutoff)
    assert timedelta(minutes=2, seconds=50) < datetime.now(timezone.utc) - within_scan < timedelta(minutes=3, seconds=10)
    assert newest_record_before(config, ["orders"], cutoff, scan=5) == cutoff.replace(
        microsecond=cutoff.microsecond // 1000 * 1000)
    assert newest_record_before(config, ["user-events"], cutoff) is None


def progress(db, batch: int, records: int, rejected: int, ago: str = "1 minute") -> None:
    db.execute("INSERT INTO stream_progress (query_name, batch_id, recorded_at, input_rows, output_rows, late_rows, "
               "rejected_rows, duration_ms, lag) VALUES ('rejected_events', %s, now() - %s::interval, %s, 0, 0, %s, "
               "0, %s)", (batch, ago, records, rejected, Jsonb({})))


def reject(db, topic: str, offset: int, reason: str, ago: str = "1 minute") -> None:
    db.execute('INSERT INTO rejected_events (topic, "partition", "offset", payload, payload_bytes, reason, '
               "rejected_at) VALUES (%s, 0, %s, 'x', 1, %s, now() - %s::interval)", (topic, offset, reason, ago))


def test_rejected_rate_below_five_percent_of_the_last_hour(db):
    assert run(checks.rejected_rate_below_threshold).description == "no records read in the last hour"
    progress(db, 10, records=1000, rejected=20)
    progress(db, 11, records=1000, rejected=29)
    progress(db, 1, records=100, rejected=100, ago="2 hours")  # outside the hour
    result = run(checks.rejected_rate_below_threshold)
    assert result.passed
    assert values(result) == {"rejected_last_hour": 49, "records_last_hour": 2000, "rejected_ratio": 0.0245}


def test_a_high_rejected_rate_names_the_top_reasons(db):
    progress(db, 10, records=1000, rejected=60)
    for offset in range(3):
        reject(db, "orders", offset, "invalid JSON")
    reject(db, "orders", 3, "missing field: price")
    reject(db, "user-events", 0, "invalid JSON")
    reject(db, "user-events", 1, "invalid JSON", ago="3 hours")
    result = run(checks.rejected_rate_below_threshold)
    assert not result.passed
    assert result.description == "6.0% of 1000 records rejected in the last hour"
    assert values(result)["top_reasons"] == [
        {"topic": "orders", "reason": "invalid JSON", "records": 3},
        {"topic": "orders", "reason": "missing field: price", "records": 1},
        {"topic": "user-events", "reason": "invalid JSON", "records": 1},
    ]
