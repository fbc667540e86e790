"""The generator's traffic shape, checked against the seed's numbers and the contract."""

import json
from collections import Counter
from datetime import datetime, timezone

import pytest

from eventflow_assets.ingestion.generator import Anomalies, EventGenerator
from eventflow_assets_tests.helpers import contract_violation

N = 50_000
FIXED_NOW = datetime(2026, 11, 24, 11, 0, 5, 123000, tzinfo=timezone.utc).timestamp()


def _events(n=N, **kwargs):
    gen = EventGenerator(seed=42, clock=lambda: FIXED_NOW, **kwargs)
    return [gen.next_event() for _ in range(n)]


def _within(observed: int, p: float, n: int) -> bool:
    """Observed count within 5 standard deviations of a binomial(n, p) mean."""
    sd = (n * p * (1 - p)) ** 0.5
    return abs(observed - n * p) <= 5 * sd


def test_mix_is_40_40_20():
    counts = Counter(topic for topic, _, _ in _events())
    assert set(counts) == {"user-events", "product-view", "orders"}
    assert _within(counts["user-events"], 0.4, N)
    assert _within(counts["product-view"], 0.4, N)
    assert _within(counts["orders"], 0.2, N)


def test_every_event_meets_the_contract_and_key_is_user_id():
    for topic, key, value in _events(20_000):
        assert contract_violation(topic, value) is None, value
        assert key == json.loads(value)["userId"].encode()


def test_timestamp_is_now_in_contract_format():
    _, _, value = _events(1)[0]
    assert json.loads(value)["timestamp"] == "2026-11-24T11:00:05.123Z"


def test_ids_are_unique():
    ids = [json.loads(v).get("eventId") or json.loads(v)["orderId"] for _, _, v in _events()]
    assert len(set(ids)) == len(ids)


def test_same_seed_same_events_other_seed_other_events():
    assert _events(1000) == _events(1000)
    other = EventGenerator(seed=43, clock=lambda: FIXED_NOW)
    assert [other.next_event() for _ in range(1000)] != _events(1000)


def test_power_users_send_about_40_percent():
    gen = EventGenerator(seed=1, clock=lambda: FIXED_NOW)
    events = [gen.next_event() for _ in range(N)]
    power = set(u.encode() for u in gen.power_users)
    assert len(power) == 20  # 2% of 1,000 users
    share = sum(key in power for _, key, _ in events) / N
    # 40% drawn from the power pool, plus their 2% share of the uniform 60%.
    assert share == pytest.approx(0.4 + 0.6 * 0.02, abs=0.01)


def test_popular_products_get_about_40_percent_of_views():
    gen = EventGenerator(seed=1, clock=lambda: FIXED_NOW)
    views = [json.loads(v)["productId"] for t, _, v in (gen.next_event() for _ in range(N)) if t == "product-view"]
    popular = set(gen.popular_products)
    assert len(popular) == 10  # 5% of 200 products
    share = sum(p in popular for p in views) / len(views)
    assert share == pytest.approx(0.4 + 0.6 * 0.05, abs=0.015)


def test_order_prices_are_per_product_and_per_currency():
    gen = EventGenerator(seed=7, clock=lambda: FIXED_NOW)
    orders = [json.loads(v) for t, _, v in (gen.next_event() for _ in range(N)) if t == "orders"]
    currencies = Counter(o["currency"] for o in orders)
    assert set(currencies) == {"USD", "EUR", "GBP", "CAD", "AUD"}
    rates = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "CAD": 0.73, "AUD": 0.66}
    by_product_currency = {}
    for o in orders:
        by_product_currency.setdefault((o["productId"], o["currency"]), set()).add(o["price"])
        # Converting back to USD gives the product's list price, within a cent of rounding.
        usd = o["price"] * rates[o["currency"]]
        assert usd == pytest.approx(gen.list_price[o["productId"]], abs=0.01 * rates[o["currency"]] + 1e-9)
    assert all(len(prices) == 1 for prices in by_product_currency.values())
    usd_prices = [o["price"] for o in orders if o["currency"] == "USD"]
    assert min(usd_prices) >= 2.0 and max(usd_prices) <= 2500.0


def test_malformed_records_break_the_contract_in_every_way():
    gen = EventGenerator(seed=5, clock=lambda: FIXED_NOW, anomalies=Anomalies(malformed=0.3))
    events = [gen.next_event() for _ in range(N)]
    reasons = Counter()
    for topic, _, value in events:
        reason = contract_violation(topic, value)
        if reason:
            reasons[reason.split(" ")[0] if not reason.startswith("missing") else "missing"] += 1
    assert _within(sum(reasons.values()), 0.3, N)
    # not json, missing field, wrong type, bad price, bad currency, bad timestamp
    assert {"not", "missing", "userId", "bad"} <= set(reasons)
    assert reasons["bad"] > 0


def test_late_and_out_of_order_times():
    gen = EventGenerator(seed=9, clock=lambda: FIXED_NOW, anomalies=Anomalies(out_of_order=0.2, late=0.1))
    ages = []
    for _, _, value in (gen.next_event() for _ in range(20_000)):
        ts = datetime.strptime(json.loads(value)["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        ages.append(FIXED_NOW - ts.timestamp())
    on_time = sum(a == 0 for a in ages)
    out_of_order = sum(0 < a < 600 for a in ages)
    late = sum(a > 600 for a in ages)
    assert on_time + out_of_order + late == 20_000
    assert _within(out_of_order, 0.2, 20_000)
    assert _within(late, 0.1, 20_000)
    assert min(a for a in ages if a > 600) >= 15 * 60  # late = older than watermark + a full window


@pytest.mark.parametrize("kwargs", [{"late": 1.5}, {"malformed": -0.1}, {"late": 0.6, "malformed": 0.6}])
def test_invalid_anomaly_ratios_are_refused(kwargs):
    with pytest.raises(ValueError):
        Anomalies(**kwargs)
