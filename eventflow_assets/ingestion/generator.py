"""Synthetic traffic: user events, product views and orders (40/40/20), as a shop would send them.

- mix: 40% user events, 40% product views, 20% orders;
- power users: a few users (2% of them) send about 40% of all events;
- popular products: a few products (5%) get about 40% of views and orders;
- each product has a fixed USD list price; an order is priced in one of several currencies;
- ids are UUIDs drawn from the seeded RNG, so a seed reproduces every id and choice;
- event time is "now" (a clock that tests may replace).

Optional anomalies for tests: out-of-order (older, within the watermark), late (older than the
watermark) and malformed records.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass

from eventflow_assets.ingestion.events import ORDERS, PRODUCT_VIEW, USD_RATES, USER_EVENTS, WATERMARK_DELAY

MIX = ((USER_EVENTS, 0.4), (PRODUCT_VIEW, 0.4), (ORDERS, 0.2))
CURRENCY_WEIGHTS = {"USD": 0.45, "EUR": 0.25, "GBP": 0.15, "CAD": 0.10, "AUD": 0.05}
USER_EVENT_WEIGHTS = {"LOGIN": 0.45, "LOGOUT": 0.45, "SIGNUP": 0.10}
POWER_SHARE = 0.4
MALFORMED_KINDS = ("not_json", "missing_field", "wrong_type", "bad_price", "bad_currency", "bad_timestamp")


@dataclass(frozen=True)
class Anomalies:
    """Fractions of events (each in [0, 1], summing to at most 1) to make irregular."""

    out_of_order: float = 0.0
    late: float = 0.0
    malformed: float = 0.0

    def __post_init__(self) -> None:
        for name in ("out_of_order", "late", "malformed"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        if self.out_of_order + self.late + self.malformed > 1.0:
            raise ValueError("out_of_order + late + malformed must not exceed 1")


def format_timestamp(epoch_ms: int) -> str:
    """ISO-8601 UTC with milliseconds, as the contract says: 2026-11-24T11:00:05.123Z."""
    seconds, millis = divmod(epoch_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class EventGenerator:
    def __init__(self, seed: int | None = None, users: int = 1000, products: int = 200,
                 anomalies: Anomalies = Anomalies(), clock=time.time):
        if users < 50 or products < 20:
            raise ValueError("need at least 50 users and 20 products")
        self.rng = random.Random(seed)
        self.clock = clock
        self.anomalies = anomalies
        self.users = [f"user-{i:05d}" for i in range(1, users + 1)]
        self.power_users = self.users[: max(1, users // 50)]
        self.products = [f"product-{i:04d}" for i in range(1, products + 1)]
        self.popular_products = self.products[: max(1, products // 20)]
        # Log-normal list prices: many items around $30, a long tail up to a few thousand.
        self.list_price = {p: round(min(2500.0, max(2.0, self.rng.lognormvariate(3.4, 1.1))), 2)
                           for p in self.products}
        self._topics = [t for t, _ in MIX]
        self._topic_cum = _cumulative(w for _, w in MIX)
        self._currencies = list(CURRENCY_WEIGHTS)
        self._currency_cum = _cumulative(CURRENCY_WEIGHTS.values())
        self._event_types = list(USER_EVENT_WEIGHTS)
        self._event_type_cum = _cumulative(USER_EVENT_WEIGHTS.values())
        self._ts_ms = -1
        self._ts_str = ""

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _user(self) -> str:
        pool = self.power_users if self.rng.random() < POWER_SHARE else self.users
        return self.rng.choice(pool)

    def _product(self) -> str:
        pool = self.popular_products if self.rng.random() < POWER_SHARE else self.products
        return self.rng.choice(pool)

    def price(self, product: str, currency: str) -> float:
        return max(0.01, round(self.list_price[product] / USD_RATES[currency], 2))

    def _timestamp(self) -> str:
        now_ms = int(self.clock() * 1000)
        shift = self._time_shift_ms()
        if shift:
            return format_timestamp(now_ms - shift)
        if now_ms != self._ts_ms:  # formatting is the costliest step; once per millisecond
            self._ts_ms, self._ts_str = now_ms, format_timestamp(now_ms)
        return self._ts_str

    def _time_shift_ms(self) -> int:
        a = self.anomalies
        if not (a.out_of_order or a.late):
            return 0
        r = self.rng.random()
        watermark_ms = int(WATERMARK_DELAY.total_seconds() * 1000)
        if r < a.out_of_order:
            return self.rng.randint(5_000, watermark_ms - 60_000)
        if r < a.out_of_order + a.late:
            return self.rng.randint(watermark_ms + 5 * 60_000, 6 * watermark_ms)
        return 0

    def next_event(self) -> tuple[str, bytes, bytes]:
        """(topic, key, value): key is the userId, value one UTF-8 JSON object."""
        rng = self.rng
        topic = self._topics[_pick(self._topic_cum, rng.random())]
        user = self._user()
        ts = self._timestamp()
        if topic == USER_EVENTS:
            etype = self._event_types[_pick(self._event_type_cum, rng.random())]
            value = f'{{"eventId":"{self._uuid()}","userId":"{user}","eventType":"{etype}","timestamp":"{ts}"}}'
        elif topic == PRODUCT_VIEW:
            value = f'{{"eventId":"{self._uuid()}","userId":"{user}","productId":"{self._product()}","timestamp":"{ts}"}}'
        else:
            product = self._product()
            currency = self._currencies[_pick(self._currency_cum, rng.random())]
            value = (f'{{"orderId":"{self._uuid()}","userId":"{user}","productId":"{product}",'
                     f'"price":{self.price(product, currency):.2f},"currency":"{currency}","timestamp":"{ts}"}}')
        if self.anomalies.malformed and rng.random() < self.anomalies.malformed:
            value = self.malform(topic, value, user)
        return topic, user.encode(), value.encode()

    def malform(self, topic: str, value: str, user: str) -> str:
        """A broken variant of a valid record: what a buggy upstream producer might send."""
        kind = self.rng.choice(MALFORMED_KINDS if topic == ORDERS else MALFORMED_KINDS[:3] + MALFORMED_KINDS[5:])
        if kind == "not_json":
            return value[: len(value) // 2]
        if kind == "missing_field":
            return value.replace('"userId":', '"user":', 1)
        if kind == "wrong_type":
            return value.replace(f'"userId":"{user}"', f'"userId":{len(user)}', 1)
        if kind == "bad_price":
            head, _, tail = value.partition('"price":')
            return head + '"price":-' + tail
        if kind == "bad_currency":
            head, _, tail = value.partition('"currency":"')
            return head + '"currency":"XXX' + tail[3:]
        head, _, tail = value.partition('"timestamp":"')
        return head + '"timestamp":"yesterday"}'


def _cumulative(weights) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    out[-1] = 1.0
    return out


def _pick(cumulative: list[float], r: float) -> int:
    for i, bound in enumerate(cumulative):
        if r < bound:
            return i
    return len(cumulative) - 1
