"""The streaming tables computed in plain Python from the records a test produced.

Written from the seed and docs/contracts.md, sharing no code with the Spark queries: valid events
(by the test's own contract check), each id once, minus the events a test marks late.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from eventflow_assets_tests.helpers import contract_violation

WINDOW = timedelta(minutes=5)


def event_time(value: dict) -> datetime:
    return datetime.strptime(value["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def window_start(ts: datetime) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return epoch + ((ts - epoch) // WINDOW) * WINDOW


def expected_tables(records, late: set = frozenset()) -> dict:
    """records: confluent_kafka Messages; late: {(topic, partition, offset)} dropped as late."""
    orders, views, rejected = {}, {}, {}
    for r in records:
        pos = (r.topic(), r.partition(), r.offset())
        if contract_violation(r.topic(), r.value()) is not None:
            rejected[pos] = r.value()
            continue
        if pos in late:
            continue
        value = json.loads(r.value(), parse_float=Decimal)
        # A UUID is read in either case (docs/streaming.md) and stored in lower case.
        if r.topic() == "orders":
            orders.setdefault(value["orderId"].lower(), value)
        elif r.topic() == "product-view":
            views.setdefault(value["eventId"].lower(), value)
    revenue = defaultdict(lambda: [Decimal(0), 0])
    funnel = defaultdict(lambda: [0, 0])
    for o in orders.values():
        w = window_start(event_time(o))
        revenue[(w, o["currency"])][0] += Decimal(o["price"])
        revenue[(w, o["currency"])][1] += 1
        funnel[(w, o["userId"])][1] += 1
    for v in views.values():
        funnel[(window_start(event_time(v)), v["userId"])][0] += 1
    return {
        "orders_raw": {oid: (o["userId"], o["productId"], Decimal(o["price"]).quantize(Decimal("0.01")),
                             o["currency"], event_time(o)) for oid, o in orders.items()},
        "revenue": {(w, c, w + WINDOW): (total, n, (total / n).quantize(Decimal("0.01"), ROUND_HALF_UP))
                    for (w, c), (total, n) in revenue.items()},
        "funnel": {(w, u, w + WINDOW): tuple(counts) for (w, u), counts in funnel.items()},
        "rejected": set(rejected),
    }


def actual_tables(conn) -> dict:
    return {
        "orders_raw": {r[0]: tuple(r[1:]) for r in conn.execute(
            'SELECT order_id, user_id, product_id, price, currency, "timestamp" FROM orders_raw')},
        "revenue": {(r[0], r[2], r[1]): tuple(r[3:]) for r in conn.execute(
            "SELECT window_start, window_end, currency, total_revenue, order_count, avg_order_value "
            "FROM revenue_by_currency_5min")},
        "funnel": {(r[0], r[2], r[1]): tuple(r[3:]) for r in conn.execute(
            "SELECT window_start, window_end, user_id, view_count, order_count FROM conversion_funnel_5min")},
        "rejected": {tuple(r) for r in conn.execute('SELECT topic, "partition", "offset" FROM rejected_events')},
    }
