"""The event contract (docs/contracts.md): topics, fields, allowed values."""

from __future__ import annotations

from datetime import timedelta

USER_EVENTS = "user-events"
PRODUCT_VIEW = "product-view"
ORDERS = "orders"
TOPIC_NAMES = (USER_EVENTS, PRODUCT_VIEW, ORDERS)

USER_EVENT_TYPES = ("LOGIN", "LOGOUT", "SIGNUP")

# Reference USD value of one unit of each currency; seeded into ``currency_rates`` by
# sql/migrations/0001_core.sql (a test keeps the two equal). Static reference rates, not live FX.
USD_RATES = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "CAD": 0.73, "AUD": 0.66}
CURRENCIES = tuple(USD_RATES)

REQUIRED_FIELDS = {
    USER_EVENTS: ("eventId", "userId", "eventType", "timestamp"),
    PRODUCT_VIEW: ("eventId", "userId", "productId", "timestamp"),
    ORDERS: ("orderId", "userId", "productId", "price", "currency", "timestamp"),
}

# The streaming parameters every layer derives from (the stream may override the watermark by
# configuration): tumbling event-time windows of WINDOW, and late events accepted up to
# WATERMARK_DELAY behind the newest event time a query has seen.
WINDOW = timedelta(minutes=5)
WATERMARK_DELAY = timedelta(minutes=10)


def minutes(duration: timedelta) -> int:
    return int(duration.total_seconds() // 60)


WINDOW_LABEL = f"{minutes(WINDOW)}-minute"  # "5-minute window" in help texts and descriptions
WATERMARK_LABEL = f"{minutes(WATERMARK_DELAY)}-minute"
