"""Micro-batches as the sinks receive them (Arrow tables with the queries' columns), built by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa

from eventflow_assets.processing.sinks import SINKS

TS = datetime(2026, 11, 24, 11, 0, 5, 123000, tzinfo=timezone.utc)
WINDOW_START = datetime(2026, 11, 24, 11, 0, tzinfo=timezone.utc)
WINDOW_END = WINDOW_START + timedelta(minutes=5)
_TYPES = {
    "price": pa.decimal128(12, 2), "timestamp": pa.timestamp("us", tz="UTC"),
    "window_start": pa.timestamp("us", tz="UTC"), "window_end": pa.timestamp("us", tz="UTC"),
    "kafka_timestamp": pa.timestamp("us", tz="UTC"), "partition": pa.int32(), "offset": pa.int64(),
    "payload_bytes": pa.int32(),
}


def batch(topic: str, rows: list[dict]) -> pa.Table:
    """A batch of ``topic``'s query: every column it collects, NULL where a row does not say."""
    columns = SINKS[topic].columns
    return pa.table({c: pa.array([r.get(c) for r in rows], _TYPES.get(c, pa.string())) for c in columns})


def order(order_id: str, price: str = "149.99", user: str = "u1", currency: str = "EUR", offset: int = 0,
          ts: datetime = TS) -> dict:
    return {"order_id": order_id, "user_id": user, "product_id": "p1", "price": Decimal(price), "currency": currency,
            "timestamp": ts, "window_start": WINDOW_START, "window_end": WINDOW_END, "topic": "orders",
            "partition": 1, "offset": offset}


def view(user: str, offset: int = 0) -> dict:
    return {"user_id": user, "window_start": WINDOW_START, "window_end": WINDOW_END, "topic": "product-view",
            "partition": 0, "offset": offset}


def reject(topic: str, offset: int, reason: str, payload: str = "not json") -> dict:
    return {"topic": topic, "partition": 0, "offset": offset, "kafka_timestamp": TS, "record_key": "u1",
            "payload": payload, "payload_bytes": len(payload.encode()), "reason": reason}


def orders(*ids: str, price: str = "149.99", first_offset: int = 0) -> pa.Table:
    return batch("orders", [order(i, price, offset=first_offset + n) for n, i in enumerate(ids)])
