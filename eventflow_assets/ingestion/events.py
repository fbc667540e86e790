"""The event contract (CONTRACTS.md): topics, fields, allowed values."""

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

# The seed's streaming parameters; the streaming layer may override them by configuration.
WINDOW = timedelta(minutes=5)
WATERMARK_DELAY = timedelta(minutes=10)
