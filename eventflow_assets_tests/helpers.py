"""Independent reference implementations and readers for the tests."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psutil
from confluent_kafka import Consumer, TopicPartition

def command_lines(processes) -> list[list[str]]:
    """The command line of each process still running; short-lived helpers may have exited (or be
    zombies not yet reaped) between listing and reading them."""
    found = []
    for p in processes:
        try:
            found.append(p.cmdline())
        except psutil.NoSuchProcess:  # ZombieProcess is one too
            pass
    return found


# Kafka's Java client: Utils.murmur2 (seed 0x9747b28c), partition = toPositive(hash) % n.
_M = 0x5BD1E995


def java_murmur2(data: bytes) -> int:
    """Signed 32-bit result, as Java's Utils.murmur2 returns it."""
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * _M) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * _M) & 0xFFFFFFFF
        h = ((h * _M) & 0xFFFFFFFF) ^ k
    tail, rem = length & ~3, length % 4
    if rem == 3:
        h ^= data[tail + 2] << 16
    if rem >= 2:
        h ^= data[tail + 1] << 8
    if rem >= 1:
        h ^= data[tail]
        h = (h * _M) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * _M) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def java_partition(key: bytes, partitions: int) -> int:
    return (java_murmur2(key) & 0x7FFFFFFF) % partitions


def read_all(bootstrap: str, topics, partitions: int = 3, timeout: float = 30.0) -> list:
    """Every record of the topics, read by offset from 0 until a partition reports EOF."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "eventflow-tests", "enable.auto.commit": False,
                  "enable.partition.eof": True})
    import time

    try:
        c.assign([TopicPartition(t, p, 0) for t in topics for p in range(partitions)])
        pending = {(t, p) for t in topics for p in range(partitions)}
        records = []
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for msg in c.consume(10000, 0.5):
                if msg.error():
                    if msg.error().code() == -191:  # _PARTITION_EOF
                        pending.discard((msg.topic(), msg.partition()))
                        continue
                    raise RuntimeError(msg.error().str())
                records.append(msg)
        assert not pending, f"no EOF from {pending}"
        return records
    finally:
        c.close()


_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
FIELDS = {
    "user-events": {"eventId", "userId", "eventType", "timestamp"},
    "product-view": {"eventId", "userId", "productId", "timestamp"},
    "orders": {"orderId", "userId", "productId", "price", "currency", "timestamp"},
}


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")  # Python's json accepts NaN and Infinity; JSON does not


def contract_violation(topic: str, raw: bytes | None, now: datetime | None = None) -> str | None:
    """Why a record breaks CONTRACTS.md, or None; written from the contract, not from the code.

    ``now`` is the processing clock (the real one when not given): an event time more than an
    hour ahead of it is invalid.
    """
    if raw is None:
        return "not json: no value"
    try:
        value = json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError):
        return "not json"
    except RecursionError:
        # Nesting deeper than Python's stack; the parser (Jackson) stops at 1000 levels. The
        # contract sets no depth: both rejecting what neither can read is an implementation limit.
        return "not json: nested too deeply"
    if not isinstance(value, dict):
        return "not an object"
    missing = FIELDS[topic] - value.keys()
    if missing:
        return f"missing {sorted(missing)}"
    for name in FIELDS[topic] - {"price"}:
        if not isinstance(value[name], str):
            return f"{name} not a string"
    if not _TS.match(value["timestamp"]):
        return "bad timestamp"
    try:
        stamp = datetime.strptime(value["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:  # no such date or time: 2026-02-30, 24:00
        return "bad timestamp"
    if stamp > (now or datetime.now(UTC)) + timedelta(hours=1):
        return "bad timestamp: more than an hour ahead"
    if not _UUID.match(value.get("eventId", value.get("orderId", ""))):
        return "bad id"
    if topic == "user-events" and value["eventType"] not in ("LOGIN", "LOGOUT", "SIGNUP"):
        return "bad eventType"
    if topic == "orders":
        price = value["price"]
        if isinstance(price, bool) or not isinstance(price, (int, Decimal)):
            return "price not a number"
        if price <= 0 or Decimal(price).as_tuple().exponent < -2:
            return "bad price"
        if price >= 10 ** 10:
            return "bad price: does not fit numeric(12,2)"
        if value["currency"] not in ("USD", "EUR", "GBP", "CAD", "AUD"):
            return "bad currency"
    return None


def delete_all_topics(config: dict, timeout: float = 30.0) -> None:
    """Delete every topic but Kafka's internal ones, and wait until the cluster no longer lists them."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(config)
    names = [t for t in admin.list_topics(timeout=10).topics if not t.startswith("__")]
    if not names:
        return
    for future in admin.delete_topics(names, operation_timeout=timeout).values():
        future.result(timeout)
    deadline = time.monotonic() + timeout
    while set(names) & set(admin.list_topics(timeout=10).topics):
        assert time.monotonic() < deadline, f"topics {names} still listed {timeout}s after deletion"
        time.sleep(0.05)
