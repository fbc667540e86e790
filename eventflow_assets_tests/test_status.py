"""The verdict `eventflow status` exits with, from a report's figures (pure)."""

from datetime import datetime, timedelta, timezone

from eventflow_assets.status import health, waiting

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
QUERIES = ("user-events", "product-view", "orders")  # one per topic


def report(**per_query) -> dict:
    return {"streaming": {name: {"recorded_at": NOW - timedelta(seconds=age), "waiting": left}
                          for name, (age, left) in per_query.items()}}


def test_waiting_is_what_the_partitions_hold_beyond_the_last_batch():
    ranges = {("orders", 0): (0, 120), ("orders", 1): (5, 40), ("product-view", 0): (0, 7)}
    assert waiting({"orders:0": 100, "orders:1": 40, "product-view:0": 9}, ranges) == 20
    assert waiting({}, ranges) == 0


def test_fresh_or_idle_queries_are_healthy():
    fresh = {q: (30, 500) for q in QUERIES}
    idle = {q: (3600, 0) for q in QUERIES}
    assert health(report(**fresh), NOW) == (0, [])
    assert health(report(**idle), NOW) == (0, [])


def test_a_query_behind_for_two_minutes_or_never_run_is_stale():
    per_query = {q: (30, 0) for q in QUERIES}
    per_query["orders"] = (121, 1_234)
    del per_query["user-events"]
    assert health(report(**per_query), NOW) == (1, [
        "user-events: no micro-batch recorded yet",
        "orders: 1,234 records waiting, last batch 2 min ago"])
    per_query["user-events"] = (120, 5)  # exactly two minutes: not yet stale
    per_query["orders"] = (30, 0)
    assert health(report(**per_query), NOW) == (0, [])


def test_max_silence_tells_a_stopped_stream_from_an_idle_one():
    per_query = {"user-events": (8, 0), "product-view": (61, 0), "orders": (200, 9)}
    assert health(report(**per_query), NOW) == (1, ["orders: 9 records waiting, last batch 3 min ago"])
    assert health(report(**per_query), NOW, max_silence=60) == (1, [
        "product-view: no progress recorded for 61s (more than 60s): the stream is not running",
        "orders: 9 records waiting, last batch 3 min ago"])
    assert health(report(**{q: (60, 0) for q in QUERIES}), NOW, max_silence=60) == (0, [])
