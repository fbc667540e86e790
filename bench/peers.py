"""The revenue query computed by EventFlow's peers, one process each (bench/compare.py runs them).

    python bench/peers.py bare|quix --bootstrap HOST:PORT --group G [--orders N] [--duration S]

The query: per 5-minute tumbling event-time window (epoch-aligned) and currency, the sum of the
prices and the count of the valid orders on `orders`, each orderId once, orders more than 10
minutes behind the event time seen so far dropped as late.

- `bare`: the Python ceiling. One confluent-kafka Consumer (batches of `consume(num_messages=)`),
  `json.loads`, a dict per (window, currency) and a set of seen order ids. The watermark is the
  smallest, over the assigned partitions, of the latest event time read from each, minus 10
  minutes, moved after each batch: a partition read ahead of the others does not make theirs late.
- `quix`: Quix Streams as its users write it: `Application` (its defaults: at-least-once, state in
  RocksDB with changelog topics), `group_by("currency")` (through its repartition topic), dedup by
  orderId in its keyed state, `tumbling_window(5 min, grace 10 min).agg(Sum, Count).current()`.
  Event time comes from the `timestamp` field (a timestamp extractor); its late rule is its own
  (per key: older than the latest time seen for that currency minus the grace).

Both work in cents (prices have at most 2 decimals), so totals are exact integers. Each stops once
it has handled --orders order records (counted, late, duplicate or invalid), or after --duration
seconds, or on SIGTERM/SIGINT, and prints one JSON line: windows [start_ms, currency, cents,
count], counters, latency (the time an order was counted minus its event time: p50, p95, and the
p50 of the first and last third of the event-time range) and wall times. Only the standard library
and the peer's own client are imported, so the Quix peer runs in its own virtualenv.
"""

from __future__ import annotations

import argparse
import calendar
import json
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import defaultdict

WINDOW_MS = 5 * 60_000
GRACE_MS = 10 * 60_000
CURRENCIES = frozenset(("USD", "EUR", "GBP", "CAD", "AUD"))
_SECONDS: dict[str, int] = {}


def event_ms(ts) -> int | None:
    """Epoch milliseconds of "2026-12-01T10:03:00.123Z", or None; the seconds part is cached."""
    if type(ts) is not str or len(ts) != 24 or ts[19] != "." or ts[23] != "Z" or not ts[20:23].isdigit():
        return None
    base = _SECONDS.get(ts[:19])
    if base is None:
        try:
            base = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) * 1000
        except ValueError:
            return None
        if len(_SECONDS) > 100_000:
            _SECONDS.clear()
        _SECONDS[ts[:19]] = base
    return base + int(ts[20:23])


def parse_order(value) -> tuple[str, str, int, int] | None:
    """(orderId, currency, price in cents, event time ms) of a valid order, else None."""
    if type(value) is not dict:
        return None
    oid, currency, price = value.get("orderId"), value.get("currency"), value.get("price")
    if type(oid) is not str or type(value.get("userId")) is not str or type(value.get("productId")) is not str:
        return None
    if currency not in CURRENCIES or type(price) not in (int, float) or not 0 < price < 1e10:
        return None
    cents = round(price * 100)
    if abs(cents - price * 100) > 1e-6:  # more than 2 decimals
        return None
    ms = event_ms(value.get("timestamp"))
    if ms is None or ms > time.time() * 1000 + 3_600_000:  # more than an hour ahead
        return None
    return oid, currency, cents, ms


class Tally:
    """What a peer reports: counters, windows, latency samples, wall times."""

    def __init__(self, target: int | None):
        self.target = target
        self.started = time.time()
        self.first = self.last = None
        self.consumed = self.counted = self.late = self.duplicates = self.invalid = 0
        self.windows: dict = {}
        self.samples: list[tuple[int, float]] = []  # (event ms, latency s)

    def handled(self) -> int:
        return self.counted + self.late + self.duplicates + self.invalid

    def done(self) -> bool:
        return self.target is not None and self.handled() >= self.target

    def report(self, peer: str, **extra) -> dict:
        lat = sorted(s for _, s in self.samples)
        lo, hi = (min(t for t, _ in self.samples), max(t for t, _ in self.samples)) if self.samples else (0, 0)
        third = (hi - lo) / 3
        early = sorted(s for t, s in self.samples if t < lo + third)
        late = sorted(s for t, s in self.samples if t >= hi - third)
        return {"peer": peer, "consumed": self.consumed, "counted": self.counted, "late": self.late,
                "duplicates": self.duplicates, "invalid": self.invalid,
                "windows": [[w, c, v[0], v[1]] for (w, c), v in sorted(self.windows.items())],
                "latency": {"n": len(lat), "p50": pct(lat, 50), "p95": pct(lat, 95),
                            "p50_first_third": pct(early, 50), "p50_last_third": pct(late, 50)},
                "wall_s": time.time() - self.started,
                "processing_s": (self.last - self.first) if self.first else 0.0, **extra}


def pct(values: list[float], p: int) -> float | None:
    return values[int(p / 100 * (len(values) - 1))] if values else None


def run_bare(args, tally: Tally, stop: threading.Event) -> dict:
    from confluent_kafka import Consumer, KafkaError

    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group,
                         "auto.offset.reset": "earliest", "enable.partition.eof": False})
    consumer.subscribe(["orders"])
    windows = defaultdict(lambda: [0, 0])
    tally.windows = windows
    seen: set[str] = set()
    latest: dict[int, int] = {}  # partition -> latest event time read
    watermark = -1
    loads = json.loads
    try:
        while not stop.is_set() and not tally.done():
            batch = consumer.consume(num_messages=args.batch, timeout=0.1)
            if not batch:
                continue
            if tally.first is None:
                tally.first = time.time()
            counted = []
            for msg in batch:
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise RuntimeError(msg.error().str())
                tally.consumed += 1
                try:
                    order = parse_order(loads(msg.value()))
                except ValueError:
                    order = None
                if order is None:
                    tally.invalid += 1
                    continue
                oid, currency, cents, ms = order
                p = msg.partition()
                if ms > latest.get(p, -1):
                    latest[p] = ms
                if ms < watermark:
                    tally.late += 1
                    continue
                if oid in seen:
                    tally.duplicates += 1
                    continue
                seen.add(oid)
                w = windows[(ms - ms % WINDOW_MS, currency)]
                w[0] += cents
                w[1] += 1
                counted.append(ms)
            tally.counted += len(counted)
            now = time.time() * 1000  # the batch's counts are all in the dict now
            tally.samples.extend((ms, (now - ms) / 1000) for ms in counted)
            tally.last = time.time()
            assigned = [tp.partition for tp in consumer.assignment()]
            if assigned and all(p in latest for p in assigned):
                watermark = max(watermark, min(latest[p] for p in assigned) - GRACE_MS)
    finally:
        consumer.close()
    return tally.report("bare", dedup=True, watermark="per partition (min of the partitions' latest) - 10 min")


def run_quix(args, tally: Tally, stop: threading.Event) -> dict:
    from datetime import timedelta

    import quixstreams
    from quixstreams import Application
    from quixstreams.dataframe.windows import Count, Sum

    state_dir = tempfile.mkdtemp(prefix="quix-state-")
    app = Application(broker_address=args.bootstrap, consumer_group=args.group, auto_offset_reset="earliest",
                      state_dir=state_dir, loglevel="WARNING")

    def check_done() -> None:
        if tally.done():
            app.stop()

    def extract_ts(value, headers, timestamp, timestamp_type) -> int:
        ms = event_ms(value.get("timestamp")) if type(value) is dict else None
        return timestamp if ms is None else ms

    def to_order(value):
        tally.consumed += 1
        if tally.first is None:
            tally.first = time.time()
        order = parse_order(value)
        if order is None:
            tally.invalid += 1
            check_done()
            return None
        return {"orderId": order[0], "currency": order[1], "cents": order[2]}

    def first_time(value, state) -> bool:
        if state.exists(value["orderId"]):
            tally.duplicates += 1
            check_done()
            return False
        state.set(value["orderId"], 1)
        return True

    def on_late(value, key, timestamp_ms, late_by_ms, start, end, name, topic, partition, offset) -> bool:
        tally.late += 1
        check_done()
        return False  # counted here instead of one warning line per order

    def after_update(aggregated, value, key, timestamp_ms, headers) -> bool:
        tally.windows[(timestamp_ms - timestamp_ms % WINDOW_MS, key)] = aggregated
        tally.counted += 1
        tally.last = time.time()
        tally.samples.append((timestamp_ms, tally.last - timestamp_ms / 1000))
        check_done()
        return False

    topic = app.topic("orders", value_deserializer="json", timestamp_extractor=extract_ts)
    sdf = app.dataframe(topic)
    sdf = sdf.apply(to_order).filter(lambda order: order is not None)
    sdf = sdf.group_by("currency")
    sdf = sdf.filter(first_time, stateful=True)
    sdf.tumbling_window(timedelta(minutes=5), grace_ms=timedelta(minutes=10), on_late=on_late,
                        after_update=after_update).agg(cents=Sum("cents"), count=Count()).current()
    threading.Thread(target=lambda: (stop.wait(), app.stop()), daemon=True).start()
    try:
        app.run()
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    tally.windows = {k: _cents_count(v) for k, v in tally.windows.items()}
    return tally.report("quix", dedup=True, version=quixstreams.__version__,
                        watermark="Quix's own: per key, latest time seen - 10 min grace")


def _cents_count(aggregated) -> tuple[int, int]:
    """(cents, count) from what Quix hands to after_update: a dict keyed by the aggregation names
    (their column suffixes vary between releases), else a (cents, count) sequence."""
    if isinstance(aggregated, dict):
        by = {k.split("/")[0]: v for k, v in aggregated.items()}
        return by["cents"], by["count"]
    return tuple(aggregated)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("peer", choices=["bare", "quix"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", default=f"bench-peer-{time.time_ns()}", help="consumer group (default: a new one)")
    parser.add_argument("--orders", type=int, help="stop after handling this many order records")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--batch", type=int, default=10_000, help="bare: records per consume() call")
    args = parser.parse_args()
    tally = Tally(args.orders)
    stop = threading.Event()
    if args.duration:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True
        timer.start()
    if args.peer == "bare":  # Quix installs its own handlers for these
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    report = (run_bare if args.peer == "bare" else run_quix)(args, tally, stop)
    print(json.dumps(report), flush=True)
    stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
