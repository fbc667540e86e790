"""streaming_job in a real run: real broker, real PostgreSQL, the session's SparkSession (through
dagster-pyspark), bounded with availableNow; the tables are exact, the run's log stays light, and
the sink_table_materializations sensor reports what the run wrote."""

import json
import queue
import re
import threading
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from eventflow_assets.definitions import defs
from eventflow_assets.ingestion.generator import Anomalies, EventGenerator
from eventflow_assets.ingestion.producer import produce
from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.orchestration.ops.streaming import ProgressLog, host_queries
from eventflow_assets.orchestration.resources import EventFlowEndpoints
from eventflow_assets.orchestration.sensors import materializations as stream_assets
from eventflow_assets.orchestration.sensors.materializations import sink_table_materializations
from eventflow_assets_tests.helpers import contract_violation, read_all
from eventflow_assets_tests.processing.expected import actual_tables, event_time, expected_tables
from eventflow_assets_tests.processing.test_streaming import T0, ticking_clock

TOPICS = ("user-events", "product-view", "orders")
TABLES = {"orders_raw": "orders_raw", "revenue_by_currency_5min": "revenue",
          "conversion_funnel_5min": "funnel", "rejected_events": "rejected"}
AVAILABLE_NOW = {"ops": {"stream_to_postgres": {"config": {"available_now": True}}}}


def valid_orders(records) -> list[dict]:
    return [json.loads(r.value()) for r in records
            if r.topic() == "orders" and contract_violation("orders", r.value()) is None]


def sink_reports(instance, monkeypatch, cursor=None, clock=1_000_000.0):
    """What the sink_table_materializations sensor reports now: ({table: metadata}, cursor)."""
    monkeypatch.setattr(stream_assets, "_clock", lambda: clock)
    result = sink_table_materializations(dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"eventflow": EventFlowEndpoints()}))
    assert all(isinstance(e, dg.AssetMaterialization) and e.asset_key.path[0] == "postgres"
               for e in result.asset_events)
    return {e.asset_key.path[1]: {k: v.value for k, v in e.metadata.items()} for e in result.asset_events}, \
        result.cursor


def summary_lines(instance, run_id) -> list[tuple[float, str]]:
    return [(e.timestamp, e.user_message) for e in instance.all_logs(run_id)
            if e.user_message.startswith("micro-batches: ")]


def logged_records(lines) -> dict[str, int]:
    """Records per query, added up over the op's summary lines."""
    total: dict[str, int] = defaultdict(int)
    for _, line in lines:
        for query, n in re.findall(r"([\w-]+): \d+ batches \(last \d+\), ([\d,]+) records", line):
            total[query] += int(n.replace(",", ""))
    return dict(total)


def test_streaming_job_fills_the_tables_exactly_and_the_sensor_reports_them(spark, eventflow_env, kafka_broker,
                                                                              pg_url, monkeypatch):
    cfg = {"bootstrap.servers": kafka_broker.bootstrap_servers}
    provision_topics(cfg)
    gen = EventGenerator(seed=41, clock=ticking_clock(T0, 0.2), anomalies=Anomalies(out_of_order=0.1, malformed=0.03))
    assert produce(cfg, gen, count=3000).failed == 0
    job = defs.get_job_def("streaming_job")

    with dg.instance_for_test() as instance:
        first = job.execute_in_process(run_config=AVAILABLE_NOW, instance=instance)
        assert first.success
        records = first_records = read_all(kafka_broker.bootstrap_servers, TOPICS)
        # The run's log stays light: no materialization, a summary line a minute at most (and one
        # at the end), whose record counts add up to the topics.
        assert first.get_asset_materialization_events() == []
        lines = summary_lines(instance, first.run_id)
        assert 1 <= len(lines) and all(b - a >= 60 for (a, _), (b, _) in zip(lines, lines[1:-1], strict=False))
        assert logged_records(lines) == {t: sum(1 for r in records if r.topic() == t) for t in TOPICS}
        # The stream's own log also lands where `eventflow logs stream` reads it.
        stream_log = (Path(eventflow_env["EVENTFLOW_HOME"]) / "logs" / "stream.log").read_text()
        assert all(f"eventflow.sinks INFO {q} batch 0: " in stream_log for q in TOPICS)

        expected = expected_tables(records)
        reported, cursor = sink_reports(instance, monkeypatch)
        assert set(reported) == set(TABLES)
        # The rows the batches wrote add up to the table; the one data batch of each query wrote every
        # (window, key) row it touched once, and the funnel's rows were touched by two queries.
        for table in ("orders_raw", "revenue_by_currency_5min", "rejected_events"):
            assert reported[table]["rows_written"] == len(expected[TABLES[table]]), table
        with_views = sum(1 for views, _ in expected["funnel"].values() if views)
        with_orders = sum(1 for _, n in expected["funnel"].values() if n)
        assert reported["conversion_funnel_5min"]["rows_written"] == with_views + with_orders
        assert reported["conversion_funnel_5min"]["queries"].startswith("orders 0")
        assert ", product-view 0" in reported["conversion_funnel_5min"]["queries"]
        orders = [r for r in records if r.topic() == "orders"]
        assert reported["orders_raw"]["input_rows"] == len(orders)
        rejected_orders = sum(1 for t, _, _ in expected["rejected"] if t == "orders")
        assert reported["orders_raw"]["rejected_rows"] == rejected_orders
        assert reported["rejected_events"]["input_rows"] == len(records)
        latest_order = max(event_time(o) for o in valid_orders(first_records))
        assert reported["orders_raw"]["watermark"] == (latest_order - timedelta(minutes=10)).timestamp()
        assert {m["lag"] for m in reported.values()} == {0}

        # Events 40 minutes later move the watermark on: the first windows become final.
        before = expected
        assert produce(cfg, EventGenerator(seed=42, clock=ticking_clock(T0 + 2400, 0.5)), count=400).failed == 0
        second = job.execute_in_process(run_config=AVAILABLE_NOW, instance=instance)
        assert second.success
        assert second.get_asset_materialization_events() == []
        records = read_all(kafka_broker.bootstrap_servers, TOPICS)
        expected = expected_tables(records)
        with psycopg.connect(pg_url) as conn:
            actual = actual_tables(conn)
            watermarks = {q: w for q, w in conn.execute("SELECT query_name, max(watermark) FROM stream_progress "
                                                        "GROUP BY 1") if w is not None}
        assert {name: actual[name] for name in TABLES.values()} == {name: expected[name] for name in TABLES.values()}
        reported, _ = sink_reports(instance, monkeypatch, cursor, 1_000_060.0)
        assert reported["orders_raw"]["rows_written"] == len(expected["orders_raw"]) - len(before["orders_raw"]) > 0
        # These events were all valid: rejected_events received no rows, so it gets no materialization.
        assert len(expected["rejected"]) == len(before["rejected"]) and "rejected_events" not in reported
        latest_order = max(event_time(o) for o in valid_orders(records))
        assert reported["orders_raw"]["watermark"] == (latest_order - timedelta(minutes=10)).timestamp()

    # Every check passes on what the stream wrote, and the agreement checks compared real windows.
    checks = defs.resolve_job_def("sink_checks_job").execute_in_process()
    evaluations = {(e.asset_key.path[1], e.check_name): e for e in checks.get_asset_check_evaluations()}
    assert len(evaluations) == 7
    assert all(e.passed for e in evaluations.values()), {k: e.description for k, e in evaluations.items()}
    horizon = watermarks["orders"]
    final_revenue = sum(1 for (w, _, end) in expected["revenue"] if end <= horizon)
    assert final_revenue > 0
    revenue_check = evaluations[("revenue_by_currency_5min", "agrees_with_orders_raw")]
    assert revenue_check.metadata["compared"].value == final_revenue


class _Log:
    def __init__(self, interrupt_on: str | None = None):
        self.lines, self.interrupt_on = [], interrupt_on

    def info(self, message):
        self.lines.append(message)
        if self.interrupt_on and message.startswith(self.interrupt_on):
            self.interrupt_on = None
            raise dg.DagsterExecutionInterruptedError()  # as the UI's termination arrives in the op's thread


class _Context:
    def __init__(self, interrupt_on: str | None = None):
        self.log = _Log(interrupt_on)


def _row(query: str, batch_id: int, records: int, lag: dict | None = None) -> dict:
    return {"query_name": query, "batch_id": batch_id, "input_rows": records, "lag": lag or {}}


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_the_op_logs_a_summary_of_the_batches_at_most_once_a_minute():
    clock = _Clock()
    progress = ProgressLog(every=60, clock=clock)
    progress.add(_row("orders", 0, 1200, {"orders:0": 5, "orders:1": 1}))
    clock.now = 30
    progress.add(_row("orders", 1, 34, {"orders:0": 0, "orders:1": 2}))
    progress.add(_row("user-events", 7, 3))
    assert progress.line() is None
    clock.now = 60
    assert progress.line() == ("micro-batches: orders: 2 batches (last 1), 1,234 records, lag 2; "
                               "user-events: 1 batches (last 7), 3 records, lag 0")
    assert progress.line() is None  # nothing new
    progress.add(_row("orders", 2, 1))
    clock.now = 119
    assert progress.line() is None  # a minute after the previous line at the earliest
    assert progress.flush() == "micro-batches: orders: 1 batches (last 2), 1 records, lag 0"  # the run's end
    assert progress.flush() is None


def test_termination_stops_the_queries_after_their_batch_then_propagates():
    stop, events, context = threading.Event(), queue.Queue(), _Context(interrupt_on="micro-batches")

    def queries():
        events.put(_row("orders", 4, 10))  # arrives while the op's thread waits for batches
        assert stop.wait(30)
        events.put(_row("orders", 5, 2))  # the batch that commits while the queries stop

    with pytest.raises(dg.DagsterExecutionInterruptedError):
        host_queries(context, queries, stop, events, ProgressLog(every=0), max_seconds=None)
    assert stop.is_set()
    assert context.log.lines == [
        "micro-batches: orders: 1 batches (last 4), 10 records, lag 0",
        "terminated: stopping the queries after the batches in flight commit",
        "micro-batches: orders: 1 batches (last 5), 2 records, lag 0"]


def test_a_failed_query_fails_the_op_with_its_reason():
    from eventflow_assets.processing.runner import StreamingFailed

    def queries():
        raise StreamingFailed("streaming query orders_raw failed: boom")

    with pytest.raises(dg.Failure, match="orders_raw failed: boom"):
        host_queries(_Context(), queries, threading.Event(), queue.Queue(), ProgressLog(), max_seconds=None)


def test_a_bounded_run_stops_the_queries_after_max_seconds():
    stop, context = threading.Event(), _Context()
    host_queries(context, lambda: stop.wait(30), stop, queue.Queue(), ProgressLog(), max_seconds=0.5)
    assert stop.is_set()
    assert context.log.lines == ["bounded run: 0.5s passed, stopping after the current batches"]
