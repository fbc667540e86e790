"""streaming_job in a real run: real broker, real PostgreSQL, the session's SparkSession (through
dagster-pyspark), bounded with availableNow; its materializations and the tables are exact."""

import json
import queue
import threading
from collections import defaultdict
from datetime import timedelta

import dagster as dg
import psycopg
import pytest

from eventflow_assets.definitions import defs
from eventflow_assets.ingestion.generator import Anomalies, EventGenerator
from eventflow_assets.ingestion.producer import produce
from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.orchestration.streaming import host_queries
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


def materializations(result) -> dict[str, list[dict]]:
    by_table = defaultdict(list)
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        assert mat.asset_key.path[0] == "postgres"
        by_table[mat.asset_key.path[1]].append({k: v.value for k, v in mat.metadata.items()})
    return by_table


def test_streaming_job_reports_each_batch_and_fills_the_tables_exactly(spark, eventflow_env, kafka_broker, pg_url):
    cfg = {"bootstrap.servers": kafka_broker.bootstrap_servers}
    provision_topics(cfg)
    gen = EventGenerator(seed=41, clock=ticking_clock(T0, 0.2), anomalies=Anomalies(out_of_order=0.1, malformed=0.03))
    assert produce(cfg, gen, count=3000).failed == 0
    job = defs.get_job_def("streaming_job")

    first = job.execute_in_process(run_config=AVAILABLE_NOW)
    assert first.success
    records = first_records = read_all(kafka_broker.bootstrap_servers, TOPICS)
    expected = expected_tables(records)
    reported = materializations(first)
    assert set(reported) == set(TABLES)
    # The rows each batch wrote add up to the table; the one data batch of each query wrote every
    # (window, key) row it touched once, and the funnel's rows were touched by two queries.
    for table in ("orders_raw", "revenue_by_currency_5min", "rejected_events"):
        assert sum(m["rows_written"] for m in reported[table]) == len(expected[TABLES[table]]), table
    with_views = sum(1 for views, _ in expected["funnel"].values() if views)
    with_orders = sum(1 for _, n in expected["funnel"].values() if n)
    assert sum(m["rows_written"] for m in reported["conversion_funnel_5min"]) == with_views + with_orders
    assert {m["query"] for m in reported["conversion_funnel_5min"]} == {"orders", "product-view"}
    orders = [r for r in records if r.topic() == "orders"]
    assert sum(m["input_rows"] for m in reported["orders_raw"]) == len(orders)
    rejected_orders = sum(1 for t, _, _ in expected["rejected"] if t == "orders")
    assert sum(m["rejected_rows"] for m in reported["orders_raw"]) == rejected_orders
    assert sum(m["input_rows"] for m in reported["rejected_events"]) == len(records)
    assert all({"batch_id", "late_rows", "batch_duration_s", "lag"} <= set(m) for ms in reported.values() for m in ms)

    # Events 40 minutes later move the watermark on: the first windows become final.
    before = expected
    assert produce(cfg, EventGenerator(seed=42, clock=ticking_clock(T0 + 2400, 0.5)), count=400).failed == 0
    second = job.execute_in_process(run_config=AVAILABLE_NOW)
    assert second.success
    records = read_all(kafka_broker.bootstrap_servers, TOPICS)
    expected = expected_tables(records)
    with psycopg.connect(pg_url) as conn:
        actual = actual_tables(conn)
        watermarks = {q: w for q, w in conn.execute("SELECT query_name, max(watermark) FROM stream_progress "
                                                    "GROUP BY 1") if w is not None}
    assert {name: actual[name] for name in TABLES.values()} == {name: expected[name] for name in TABLES.values()}
    reported = materializations(second)
    for table in ("orders_raw", "rejected_events"):
        assert sum(m["rows_written"] for m in reported[table]) == len(expected[TABLES[table]]) - len(
            before[TABLES[table]]), table
    # The second run's data batch ran with the watermark the first run left: the latest order
    # time it saw minus the 10-minute delay.
    latest_order = max(event_time(o) for o in valid_orders(first_records))
    assert [m["watermark"] for m in reported["orders_raw"]] == [(latest_order - timedelta(minutes=10)).timestamp()]

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
    def __init__(self):
        self.lines = []

    def info(self, message):
        self.lines.append(message)


class _Context:
    def __init__(self):
        self.log = _Log()


class _Reporter:
    """Records what the op's thread reports; raises the UI's interruption on a marked row."""

    def __init__(self):
        self.rows, self.caught_up = [], False

    def report(self, row):
        self.rows.append(row)
        if row == "terminate":
            raise dg.DagsterExecutionInterruptedError()

    def catch_up(self):
        self.caught_up = True


def test_termination_stops_the_queries_after_their_batch_then_propagates():
    stop, events, reporter = threading.Event(), queue.Queue(), _Reporter()

    def queries():
        events.put("terminate")  # arrives while the op's thread waits for batches
        assert stop.wait(30)
        events.put("batch in flight")  # the batch that commits while the queries stop

    with pytest.raises(dg.DagsterExecutionInterruptedError):
        host_queries(_Context(), queries, stop, events, reporter, max_seconds=None)
    assert stop.is_set()
    assert reporter.rows == ["terminate", "batch in flight"] and reporter.caught_up


def test_a_failed_query_fails_the_op_with_its_reason():
    from eventflow_assets.processing.runner import StreamingFailed

    def queries():
        raise StreamingFailed("streaming query orders_raw failed: boom")

    with pytest.raises(dg.Failure, match="orders_raw failed: boom"):
        host_queries(_Context(), queries, threading.Event(), queue.Queue(), _Reporter(), max_seconds=None)


def test_a_bounded_run_stops_the_queries_after_max_seconds():
    stop, context = threading.Event(), _Context()
    host_queries(context, lambda: stop.wait(30), stop, queue.Queue(), _Reporter(), max_seconds=0.5)
    assert stop.is_set()
    assert context.log.lines == ["bounded run: 0.5s passed, stopping after the current batches"]
