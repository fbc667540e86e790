"""Independent reference implementations and readers for the tests."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psutil
import psycopg
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


def segment_bytes(data_dir, topic: str) -> int:
    """Bytes of the topic's log segment files in one broker's data directory, live partitions only:
    a deleted topic's folders stay a while as ``<topic>-<n>.<id>-delete`` (the suite deletes its
    topics after each test), and Kafka no longer counts them."""
    live = re.compile(re.escape(topic) + r"-\d+")
    return sum(f.stat().st_size for d in data_dir.iterdir() if d.is_dir() and live.fullmatch(d.name)
               for f in d.glob("*.log"))


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


# docs/contracts.md: "ISO-8601 UTC with milliseconds: 2026-11-24T11:00:05.123Z" (that form only).
_TS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\Z")
# "uuid": the standard 8-4-4-4-12 hex form; RFC 9562 reads it in either case, any version.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
FIELDS = {
    "user-events": {"eventId", "userId", "eventType", "timestamp"},
    "product-view": {"eventId", "userId", "productId", "timestamp"},
    "orders": {"orderId", "userId", "productId", "price", "currency", "timestamp"},
}


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")  # Python's json accepts NaN and Infinity; JSON does not


class _Ambiguous(ValueError):
    pass


def _unique_names(pairs: list) -> dict:
    """An object whose names repeat has no one meaning (RFC 8259 4: "SHOULD be unique"; readers
    differ on which value wins): the record is rejected, wherever the object is in it."""
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise _Ambiguous("duplicate name")
    return dict(pairs)


def _lone_surrogate(value) -> bool:
    """Whether any string (names included) holds an escaped lone surrogate, ``"\\ud800"``: no
    Unicode text, so no UTF-8 (docs/contracts.md) and no PostgreSQL text. Iterative: records are deep."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in item):
            return True
    return False


def _decimals(number: Decimal) -> int:
    """Decimals of the number's value, exactly (no context rounding): 149.990 has 2, 1.5E+2 none."""
    _, digits, exponent = number.as_tuple()
    zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + zeros)) if any(digits) else 0


def contract_violation(topic: str, raw: bytes | None, now: datetime | None = None) -> str | None:
    """Why a record breaks docs/contracts.md, or None; written from the contract, not from the code.

    ``now`` is the processing clock (the real one when not given): an event time more than an
    hour ahead of it is invalid.
    """
    if raw is None:
        return "not json: no value"
    try:
        value = json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_no_constant,
                           object_pairs_hook=_unique_names)
    except _Ambiguous:
        return "not json: duplicate name"
    except (UnicodeDecodeError, ValueError):
        return "not json"
    except RecursionError:
        # Nesting deeper than Python's stack; the parser (Jackson) stops at 1000 levels. The
        # contract sets no depth: both rejecting what neither can read is an implementation limit.
        return "not json: nested too deeply"
    if not isinstance(value, dict):
        return "not an object"
    if _lone_surrogate(value):
        return "not json: lone surrogate"
    missing = FIELDS[topic] - value.keys()
    if missing:
        return f"missing {sorted(missing)}"
    for name in FIELDS[topic] - {"price"}:
        if not isinstance(value[name], str):
            return f"{name} not a string"
    for name in FIELDS[topic] - {"price"}:
        if "\x00" in value[name]:  # PostgreSQL text cannot hold it; the contract's strings are text
            return f"{name} contains NUL"
    for name in ("userId", "productId"):
        if value.get(name) == "":  # an event of nobody, or of no product: an identifier is required
            return f"{name} empty"
    if not _TS.match(value["timestamp"]):
        return "bad timestamp"
    if value["timestamp"].startswith("0000"):  # ISO-8601's year 0; no datetime or timestamptz before year 1
        return "bad timestamp: before year 1"
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
        if price <= 0 or _decimals(Decimal(price)) > 2:
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


def table_rows(url: str, table: str) -> set:
    """Every row of an analytics table as a tuple, without computed_at."""
    with psycopg.connect(url) as conn:
        cur = conn.execute(f"SELECT * FROM {table}")
        keep = [i for i, col in enumerate(cur.description) if col.name != "computed_at"]
        return {tuple(row[i] for i in keep) for row in cur.fetchall()}
