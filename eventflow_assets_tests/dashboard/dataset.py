"""Datasets for the dashboard's tests, written straight into the tables the dashboard reads.

``load_hand`` is small, with the expected values worked out by hand in the tests. ``load_demo``
is a few hours of a busy stream, generated from a seed, for the browser test and its screenshot;
its expected all-time totals are summed here in Python from the rows it wrote.

Stream progress and rejected records are timed relative to the database's ``now()`` (the
dashboard shows their last minutes); the windows are at fixed times (it shows the latest hours
of windows, whenever they were).
"""

from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg

D = Decimal
UTC = timezone.utc
WINDOW = timedelta(minutes=5)


def ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


# revenue_by_currency_5min: (window_start, currency, total_revenue, order_count, avg_order_value).
# The latest window starts 12:10, so the 3-hour span holds windows after 09:10.
HAND_REVENUE = [
    ("2026-01-10 04:00", "USD", "5.00", 1, "5.00"),          # hours before the span
    ("2026-01-10 09:10", "USD", "1.00", 1, "1.00"),          # exactly 3 h before the latest: outside
    ("2026-01-10 09:15", "GBP", "2.00", 1, "2.00"),          # 2.54 USD
    ("2026-01-10 12:00", "USD", "100.50", 2, "50.25"),
    ("2026-01-10 12:00", "EUR", "200.00", 1, "200.00"),      # 216.00 USD
    ("2026-01-10 12:05", "USD", "19.99", 1, "19.99"),
    ("2026-01-10 12:05", "GBP", "35.10", 3, "11.70"),        # 44.577 -> 44.58 USD
    ("2026-01-10 12:10", "EUR", "33.33", 1, "33.33"),        # 35.9964 -> 36.00 USD
    ("2026-01-10 12:10", "JPY", "12345.67", 1, "12345.67"),  # no rate: no USD value
]

# conversion_funnel_5min: (window_start, user_id, view_count, order_count). Latest window 12:05.
HAND_FUNNEL = [
    ("2026-01-10 08:00", "u1", 5, 0),  # before the span
    ("2026-01-10 12:00", "u1", 3, 1), ("2026-01-10 12:00", "u2", 2, 0), ("2026-01-10 12:00", "u3", 0, 1),
    ("2026-01-10 12:05", "u1", 4, 0), ("2026-01-10 12:05", "u2", 1, 1),
]

# analytics_conversion_rates: (user_id, view_count, order_count, conversion_rate).
HAND_RATES = [("u1", 7, 1, "14.29"), ("u2", 3, 1, "33.33"), ("u3", 0, 1, None), ("u4", 2, 2, "100.00"),
              ("u5", 4, 0, "0.00"), ("u6", 1, 1, "100.00")]

# analytics_segment_summary: (segment, users, revenue_usd, avg_spend_usd, orders), not in display order.
HAND_SEGMENTS = [("New", 3, "75.00", "25.00", 3), ("VIP", 1, "1500.00", "1500.00", 4),
                 ("Regular", 2, "300.00", "150.00", 5), ("Premium", 0, "0.00", None, 0)]

# stream_progress: (query, checkpoint, batch, seconds before now, watermark lag s or None, input, rejected,
# lag per partition, read offsets per partition).
HAND_PROGRESS = [
    ("product-view", "c1", 0, 7200, 630, 1000, 100, {}, {"orders:0": 10}),  # outside every span
    ("product-view", "c1", 1, 1200, 630, 490, 5, {"orders:0": 1},
     {"orders:0": 100, "orders:1": 50, "product-view:0": 300, "user-events:0": 40}),
    ("product-view", "c1", 2, 1140, 630, 186, 3, {},
     {"orders:0": 130, "orders:1": 80, "product-view:0": 420, "user-events:0": 46}),
    ("product-view", "c1", 3, 1120, 630, 26, 1, {},
     {"orders:0": 140, "orders:1": 85, "product-view:0": 431, "user-events:0": 46}),
    # A new checkpoint: its offsets start again, its first batch has no predecessor.
    ("product-view", "c2", 0, 300, 630, 10, 0, {}, {"orders:0": 10}),
    ("product-view", "c2", 1, 240, 630, 30, 2, {"orders:0": 2}, {"orders:0": 40}),
    ("orders", "c1", 6, 600, 630, 50, 0, {"orders:0": 9}, {"orders:0": 120}),
    ("orders", "c1", 7, 240, 630, 20, 0, {"orders:0": 3, "orders:1": 4}, {"orders:0": 140, "orders:1": 85}),
    ("user-events", "c1", 0, 240, None, 20, 0, {}, {}),  # stateless: never a watermark
]

# rejected_events: (topic, offset, reason, seconds before now).
HAND_REJECTED = [
    ("orders", 1, "invalid value: currency must be one of USD, EUR, GBP, CAD, AUD: XYZ", 600),
    ("orders", 2, "invalid value: currency must be one of USD, EUR, GBP, CAD, AUD: ABC", 540),
    ("orders", 3, "invalid value: timestamp is not ISO-8601 with offset: 2026-01-10 12:00", 480),
    ("product-view", 1, "invalid JSON", 420),
    ("product-view", 2, "invalid JSON", 360),
    ("product-view", 3, "invalid JSON: text after the JSON value", 300),
    ("user-events", 1, "missing field: userId", 240),
    ("user-events", 2, "invalid JSON", 7200),  # before the hour
]


def _insert(conn: psycopg.Connection, revenue, funnel, rates, segments, progress, rejected) -> None:
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO revenue_by_currency_5min (window_start, window_end, currency, total_revenue, "
                        "order_count, avg_order_value) VALUES (%s, %s, %s, %s, %s, %s)",
                        [(w, w + WINDOW, c, D(t), n, D(a)) for w, c, t, n, a in revenue])
        cur.executemany("INSERT INTO conversion_funnel_5min (window_start, window_end, user_id, view_count, "
                        "order_count) VALUES (%s, %s, %s, %s, %s)", [(w, w + WINDOW, u, v, o) for w, u, v, o in funnel])
        cur.executemany("INSERT INTO analytics_conversion_rates (user_id, view_count, order_count, conversion_rate) "
                        "VALUES (%s, %s, %s, %s)", rates)
        cur.executemany("INSERT INTO analytics_segment_summary (segment, users, revenue_usd, avg_spend_usd, orders) "
                        "VALUES (%s, %s, %s, %s, %s)", segments)
        # The watermark is NULL before a query's first one (a NULL delay).
        cur.executemany("""
            INSERT INTO stream_progress (query_name, checkpoint_id, batch_id, recorded_at, watermark, input_rows,
                                         output_rows, late_rows, rejected_rows, duration_ms, lag, read_offsets)
            VALUES (%s, %s, %s, now() - make_interval(secs => %s), now() - make_interval(secs => %s + %s::int),
                    %s, %s, 0, %s, %s, %s, %s)""",
                        [(q, c, b, ago, ago, delay, n, n, rej, 100 + b, json.dumps(lag), json.dumps(offsets))
                         for q, c, b, ago, delay, n, rej, lag, offsets in progress])
        cur.executemany("""
            INSERT INTO rejected_events (topic, "partition", "offset", payload, payload_bytes, reason, rejected_at)
            VALUES (%s, 0, %s, '{}', 2, %s, now() - make_interval(secs => %s))""", rejected)


def load_hand(url: str) -> None:
    with psycopg.connect(url) as conn:
        _insert(conn, [(ts(w), c, t, n, a) for w, c, t, n, a in HAND_REVENUE],
                [(ts(w), u, v, o) for w, u, v, o in HAND_FUNNEL], HAND_RATES, HAND_SEGMENTS, HAND_PROGRESS,
                HAND_REJECTED)


DEMO_PRICES = {"USD": 42, "EUR": 38, "GBP": 33, "CAD": 55, "AUD": 60}  # mean price per order
DEMO_TOPICS = {"orders": 2.0, "product-view": 6.0, "user-events": 1.2}  # events/s


def load_demo(url: str, seed: int = 7, hours: int = 3) -> dict[str, tuple[Decimal, int]]:
    """A busy stream's tables; returns {currency: (all-time revenue, orders)} as written."""
    rng = random.Random(seed)
    latest = datetime.now(UTC).replace(second=0, microsecond=0)
    latest -= timedelta(minutes=latest.minute % 5)
    windows = [latest - WINDOW * i for i in range(hours * 12 + 24)][::-1]  # and 2 h before the span
    revenue, totals = [], {}
    for i, w in enumerate(windows):
        busy = 1 + 0.5 * ((i % 24) / 24)
        for currency, mean in DEMO_PRICES.items():
            n = max(1, int(rng.gauss(18 if currency in ("USD", "EUR") else 7, 3) * busy))
            total = sum((D(rng.randint(500, mean * 200)) / 100 for _ in range(n)), D(0))
            revenue.append((w, currency, str(total), n, str((total / n).quantize(D("0.01")))))
            t, c = totals.get(currency, (D(0), 0))
            totals[currency] = (t + total, c + n)
    users = [f"user_{i:04d}" for i in range(1, 61)]
    funnel, per_user = [], {}
    for w in windows[-hours * 12:]:
        for u in rng.sample(users, 25):
            views, orders = rng.randint(0, 6), rng.choice((0, 0, 0, 1, 1, 2))
            if views or orders:
                funnel.append((w, u, views, orders))
                v, o = per_user.get(u, (0, 0))
                per_user[u] = (v + views, o + orders)
    rates = [(u, v, o, str((D(o * 100) / v).quantize(D("0.01"))) if v else None) for u, (v, o) in per_user.items()]
    segments = [("VIP", 4, "5210.40", "1302.60", 31), ("Premium", 9, "6120.75", "680.08", 52),
                ("Regular", 31, "4012.32", "129.43", 120), ("New", 16, "611.80", "38.24", 16)]
    progress, offsets = [], {t: 0 for t in DEMO_TOPICS}
    queries = {t: (t,) for t in DEMO_TOPICS}  # one query per topic, named after it
    for b, ago in enumerate(range(1800, 0, -10)):  # a batch every 10 s for half an hour, in waves
        wave = 1 + 0.3 * math.sin(b / 15) + 0.1 * rng.random()
        step = {t: int(rate * 10 * wave) for t, rate in DEMO_TOPICS.items()}
        offsets = {t: offsets[t] + n for t, n in step.items()}
        for i, (q, topics) in enumerate(queries.items()):
            lag = {f"{t}:0": int(step[t] * (0.3 + 0.2 * math.sin(b / 20 + i))) for t in topics}
            read = {f"{t}:0": offsets[t] for t in topics}
            delay = 602 + 2 * i + int(4 * rng.random())
            progress.append((q, "c1", b, ago, delay, sum(step[t] for t in topics), rng.randint(0, 2), lag, read))
    reasons = {"orders": ["invalid value: currency must be one of USD, EUR, GBP: XYZ", "missing field: price",
                          "invalid value: price must be > 0: -3"],
               "product-view": ["invalid JSON", "missing field: productId"],
               "user-events": ["invalid value: eventType must be one of LOGIN, LOGOUT, SIGNUP: LOGN", "invalid JSON"]}
    rejected = []
    for i in range(60):
        topic = rng.choice(("orders", "orders", "product-view", "product-view", "product-view", "user-events"))
        rejected.append((topic, i, reasons[topic][min(int(rng.expovariate(1.2)), len(reasons[topic]) - 1)],
                         rng.randint(10, 3500)))
    with psycopg.connect(url) as conn:
        _insert(conn, revenue, funnel, rates, segments, progress, rejected)
    return totals
