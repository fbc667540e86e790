"""A hand-built dataset for the analyses, its loader, and the expected outputs in plain Python.

The reference functions are written from docs/contracts.md and the 0002 migration's comments with
``decimal`` arithmetic, sharing no code with the Spark transforms. Edge cases are named in the
comments; the tests also assert a few figures worked out by hand.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import psycopg

D = Decimal
UTC = timezone.utc
WINDOW = timedelta(minutes=5)
# As seeded by 0001_core.sql; JPY deliberately has none.
RATES = {"USD": D("1"), "EUR": D("1.08"), "GBP": D("1.27"), "CAD": D("0.73"), "AUD": D("0.66")}
SEGMENT_NAMES = ("VIP", "Premium", "Regular", "New")


def ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


# revenue_by_currency_5min: (window_start, currency, total_revenue, order_count). Three UTC
# hours over two days. USD: windows of 1, 10 and 3 orders, so the average of the windows'
# averages (48.89) is not the true average (450.05 / 14 = 32.15). CAD: 10.05 / 2 = 5.025, a tie
# HALF UP rounds to 5.03. JPY has no rate.
REVENUE = [
    ("2026-11-23 23:55", "USD", "100.00", 1),
    ("2026-11-23 23:55", "EUR", "45.50", 2),
    ("2026-11-24 00:00", "USD", "300.00", 10),
    ("2026-11-24 00:05", "EUR", "200.00", 4),
    ("2026-11-24 00:55", "USD", "50.05", 3),
    ("2026-11-24 01:10", "EUR", "99.99", 2),
    ("2026-11-24 01:10", "GBP", "10.01", 1),
    ("2026-11-24 01:15", "CAD", "10.05", 2),
    ("2026-11-24 01:15", "JPY", "1500.00", 1),
]

# conversion_funnel_5min: (window_start, user_id, view_count, order_count).
FUNNEL = [
    ("2026-11-23 23:55", "u_a", 4, 1), ("2026-11-24 00:00", "u_a", 6, 2),  # 3/10 -> 30.00
    ("2026-11-24 00:00", "u_b", 3, 0),                                      # views, no orders -> 0.00
    ("2026-11-24 00:05", "u_c", 0, 2),                                      # orders, no views -> NULL
    ("2026-11-24 01:10", "u_d", 3, 1),                                      # 33.333 -> 33.33
    ("2026-11-24 00:00", "u_e", 300, 0), ("2026-11-24 00:05", "u_e", 500, 1),  # 0.125 -> 0.13
    ("2026-11-24 01:15", "u_f", 2, 5),                                      # 250.00 (over 100)
    ("2026-11-24 01:15", "u_g", 3, 2),                                      # 66.667 -> 66.67
]

# orders_raw: (user_id, price, currency). Spend in USD and segment worked out by hand:
ORDERS = [
    ("vip", "400.00", "USD"), ("vip", "300.00", "EUR"), ("vip", "250.00", "GBP"),  # 1041.50 VIP
    ("vip_one", "1000.01", "USD"),                               # 1000.01 VIP with one order
    ("exactly_1000", "600.00", "USD"), ("exactly_1000", "400.00", "USD"),  # 1000.00 Premium
    ("single_600", "600.00", "USD"),                             # 600.00 Premium, not New
    ("eur_1000", "925.93", "EUR"),                               # 1000.0044 -> 1000.00 Premium
    ("eur_over_500", "462.97", "EUR"),                           # 500.0076 -> 500.01 Premium
    ("exactly_500_two", "250.00", "USD"), ("exactly_500_two", "250.00", "USD"),  # 500.00 Regular
    ("multi_small", "10.00", "USD"), ("multi_small", "20.00", "EUR"), ("multi_small", "5.55", "USD"),  # 37.15 Regular
    ("exactly_500_one", "500.00", "USD"),                        # 500.00 New
    ("single_gbp", "19.99", "GBP"),                              # 25.3873 -> 25.39 New
]
HAND_SEGMENTS = {
    "vip": ("VIP", D("1041.50"), 3), "vip_one": ("VIP", D("1000.01"), 1),
    "exactly_1000": ("Premium", D("1000.00"), 2), "single_600": ("Premium", D("600.00"), 1),
    "eur_1000": ("Premium", D("1000.00"), 1), "eur_over_500": ("Premium", D("500.01"), 1),
    "exactly_500_two": ("Regular", D("500.00"), 2), "multi_small": ("Regular", D("37.15"), 3),
    "exactly_500_one": ("New", D("500.00"), 1), "single_gbp": ("New", D("25.39"), 1),
}
# (users, revenue_usd, avg_spend_usd, orders): averages 1020.755, 775.0025, 268.575, 262.695 HALF UP.
HAND_SUMMARY = {
    "VIP": (2, D("2041.51"), D("1020.76"), 4),
    "Premium": (4, D("3100.01"), D("775.00"), 5),
    "Regular": (2, D("537.15"), D("268.58"), 5),
    "New": (2, D("525.39"), D("262.70"), 2),
}


def money(x: Decimal | None) -> Decimal | None:
    return None if x is None else x.quantize(D("0.01"), rounding=ROUND_HALF_UP)


def load(url: str, revenue=REVENUE, funnel=FUNNEL, orders=ORDERS) -> None:
    """Insert the dataset into a database whose schema is applied."""
    with psycopg.connect(url) as conn:
        for start, currency, total, count in revenue:
            t = ts(start)
            conn.execute("""INSERT INTO revenue_by_currency_5min
                            (window_start, window_end, currency, total_revenue, order_count, avg_order_value)
                            VALUES (%s, %s, %s, %s, %s, %s)""",
                         (t, t + WINDOW, currency, D(total), count, money(D(total) / count)))
        for start, user, views, n in funnel:
            conn.execute("""INSERT INTO conversion_funnel_5min
                            (window_start, window_end, user_id, view_count, order_count)
                            VALUES (%s, %s, %s, %s, %s)""", (ts(start), ts(start) + WINDOW, user, views, n))
        conn.execute("SELECT orders_raw_day_partition('2026-11-24')")  # the day the orders below fall on
        for i, (user, price, currency) in enumerate(orders):
            conn.execute("""INSERT INTO orders_raw (order_id, user_id, product_id, price, currency, "timestamp")
                            VALUES (%s, %s, %s, %s, %s, %s)""",
                         (f"o{i}", user, f"p{i % 3}", D(price), currency, ts("2026-11-24 00:00") + i * WINDOW))


def _usd(amount: Decimal, currency: str) -> Decimal | None:
    return amount * RATES[currency] if currency in RATES else None


def expected_top_revenue(revenue=REVENUE) -> set:
    totals = defaultdict(lambda: [D(0), 0])
    for _, currency, total, count in revenue:
        totals[currency][0] += D(total)
        totals[currency][1] += count
    return {(c, t, n, money(t / n), money(_usd(t, c))) for c, (t, n) in totals.items()}


def expected_conversion(funnel=FUNNEL) -> set:
    totals = defaultdict(lambda: [0, 0])
    for _, user, views, orders in funnel:
        totals[user][0] += views
        totals[user][1] += orders
    return {(u, v, o, money(D(o) * 100 / D(v)) if v else None) for u, (v, o) in totals.items()}


def _floor(t: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + (t - epoch) // step * step


def expected_trends(revenue=REVENUE) -> dict[str, set]:
    """Table name -> rows (without computed_at)."""
    five = {(ts(s), ts(s) + WINDOW, c, D(t), n, money(_usd(D(t), c))) for s, c, t, n in revenue}
    out = {"analytics_revenue_trends": five}
    usd_rows = set()
    for table, granularity, step in (("analytics_revenue_trends_hourly", "hour", timedelta(hours=1)),
                                     ("analytics_revenue_trends_daily", "day", timedelta(days=1)),
                                     (None, "5min", WINDOW)):
        per_currency = defaultdict(lambda: [D(0), 0])
        per_period = defaultdict(lambda: [None, 0])
        for s, c, t, n in revenue:
            period = _floor(ts(s), step)
            per_currency[(period, c)][0] += D(t)
            per_currency[(period, c)][1] += n
            usd = _usd(D(t), c)
            if usd is not None:
                per_period[period][0] = (per_period[period][0] or D(0)) + usd
            per_period[period][1] += n
        if table:
            out[table] = {(p, c, t, n, money(_usd(t, c))) for (p, c), (t, n) in per_currency.items()}
        usd_rows |= {(granularity, p, money(u), n) for p, (u, n) in per_period.items()}
    out["analytics_revenue_trends_usd"] = usd_rows
    return out


def expected_segments(orders=ORDERS) -> tuple[set, set]:
    spend = defaultdict(lambda: [D(0), 0])
    for user, price, currency in orders:
        spend[user][0] += _usd(D(price), currency)
        spend[user][1] += 1
    users = set()
    for user, (total, n) in spend.items():
        total = money(total)
        segment = "VIP" if total > 1000 else "Premium" if total > 500 else "New" if n == 1 else "Regular"
        users.add((user, segment, total, n))
    summary = set()
    for name in SEGMENT_NAMES:
        members = [u for u in users if u[1] == name]
        revenue = sum((u[2] for u in members), D(0))
        summary.add((name, len(members), revenue, money(revenue / len(members)) if members else None,
                     sum(u[3] for u in members)))
    return users, summary
