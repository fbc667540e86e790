"""What keeps the analytics current: the finalized_windows sensor over cursor transitions, reading a
real PostgreSQL's stream_progress; the global analyses' automation condition and the freshness
policies, evaluated by Dagster's own evaluators on the real definitions.

Progress and window rows are written by hand here, as the stream would; the end-to-end test
(test_analytics_assets.py) gets them from the real streaming job.
"""

import asyncio
import json
from datetime import datetime, timedelta, timezone

import dagster as dg
import psycopg
import pytest
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.definitions.freshness_evaluator import FRESHNESS_EVALUATORS_BY_POLICY_TYPE
from dagster._core.events import AssetMaterializationPlannedData, DagsterEvent
from dagster._core.loader import LoadingContextForTest
from dagster._core.test_utils import freeze_time

from eventflow_assets.definitions import defs
from eventflow_assets.orchestration.assets.tables import table_key
from eventflow_assets.orchestration.resources import EventFlowEndpoints
from eventflow_assets.orchestration.sensors import analytics as analytics_sensors
from eventflow_assets.orchestration.sensors.analytics import RANGE_END_TAG, RANGE_START_TAG, finalized_windows
from eventflow_assets.storage.schema import apply_schema

UTC = timezone.utc
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def at(hhmm: str, day: str = "2026-11-20") -> datetime:
    return datetime.strptime(f"{day} {hhmm}", "%Y-%m-%d %H:%M:%S" if hhmm.count(":") == 2
                             else "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


@pytest.fixture
def db(pg_url, tmp_path, monkeypatch):
    apply_schema(pg_url)
    monkeypatch.setenv("EVENTFLOW_POSTGRES_URL", pg_url)
    monkeypatch.setenv("EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")  # never contacted
    monkeypatch.setenv("EVENTFLOW_HOME", str(tmp_path))
    monkeypatch.setattr(analytics_sensors, "_clock", NOW.timestamp)
    return pg_url


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def add_windows(url: str, *starts: datetime) -> None:
    with psycopg.connect(url) as conn:
        for start in starts:
            conn.execute("""INSERT INTO revenue_by_currency_5min
                            (window_start, window_end, currency, total_revenue, order_count, avg_order_value)
                            VALUES (%s, %s, 'USD', 10, 1, 10)""", (start, start + timedelta(minutes=5)))


def progress(url: str, watermark: datetime | None, *, batch: int, checkpoint: str = "c1",
             recorded: datetime | None = None, query: str = "orders") -> None:
    with psycopg.connect(url) as conn:
        conn.execute("""INSERT INTO stream_progress (query_name, checkpoint_id, batch_id, recorded_at, watermark,
                                                     input_rows, output_rows, late_rows, rejected_rows, duration_ms)
                        VALUES (%s, %s, %s, %s, %s, 0, 0, 0, 0, 1)""",
                     (query, checkpoint, batch, recorded or NOW, watermark))


class Ticks:
    """Evaluates a sensor tick after tick as the daemon does: through Dagster's tick evaluation
    (which validates partition keys against the job), carrying the cursor."""

    def __init__(self, sensor, instance):
        self.sensor, self.instance, self.cursor = sensor, instance, None
        self.run_keys: list[str] = []

    def __call__(self):
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor, sensor_name=self.sensor.name,
                                          repository_def=defs.get_repository_def(),
                                          resources={"eventflow": EventFlowEndpoints()})
        result = self.sensor.evaluate_tick(context)
        if result.cursor is not None:
            self.cursor = result.cursor
        self.run_keys += [r.run_key for r in result.run_requests]
        return list(result.run_requests), result.skip_message


def requested(requests) -> list[tuple]:
    """(run_key, partition key or the range of days) of each request."""
    return [(r.run_key, r.partition_key or (r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG])) for r in requests]


def test_windows_are_requested_once_each_as_the_watermark_finalizes_them(db, instance):
    tick = Ticks(finalized_windows, instance)
    assert tick() == ([], "the orders query has no watermark yet (no order streamed)")
    assert tick.cursor is None

    # Data from 10:00 on, a gap at 10:15 (no orders in that window, still a window).
    add_windows(db, at("10:00"), at("10:05"), at("10:10"), at("10:20"))
    progress(db, None, batch=0)
    assert tick() == ([], "the orders query has no watermark yet (no order streamed)")
    assert tick.cursor is None

    progress(db, at("10:04:59"), batch=1, recorded=NOW + timedelta(seconds=10))
    assert tick() == ([], "watermark 2026-11-20 10:04:59 UTC: window 2026-11-20-10:00 (ends "
                          "2026-11-20 10:05:00 UTC) is not final yet")
    assert json.loads(tick.cursor) == {"next_window": "2026-11-20T10:00:00+00:00"}

    # Several windows finalize at once: one run of their day.
    progress(db, at("10:15:30"), batch=2, recorded=NOW + timedelta(seconds=20))
    requests, skip = tick()
    assert (requested(requests), skip) == ([("windows-2026-11-20-10:00..2026-11-20-10:10", "2026-11-20")], None)
    assert (requests[0].tags["eventflow/watermark"], requests[0].tags["dagster/partition"]) == (
        "2026-11-20T10:15:30+00:00", "2026-11-20")
    assert json.loads(tick.cursor) == {"next_window": "2026-11-20T10:15:00+00:00"}

    # Same watermark: nothing again.
    assert tick()[0] == []

    # The stream stalls, then its watermark jumps: windows finalize late, all at once, including
    # the empty 10:15; their day runs again.
    progress(db, at("10:31:00"), batch=3, recorded=NOW + timedelta(seconds=30))
    assert requested(tick()[0]) == [("windows-2026-11-20-10:15..2026-11-20-10:25", "2026-11-20")]

    # A new checkpoint restarts batch ids at 0 with an older watermark: the row recorded last
    # counts, not the highest batch id, and no window is requested twice.
    progress(db, at("10:20:00"), batch=0, checkpoint="c2", recorded=NOW + timedelta(seconds=40))
    assert tick()[0] == []
    progress(db, at("10:36:00"), batch=1, checkpoint="c2", recorded=NOW + timedelta(seconds=50))
    assert requested(tick()[0]) == [("window-2026-11-20-10:30", "2026-11-20")]

    assert len(tick.run_keys) == len(set(tick.run_keys)) == 3


def test_an_out_of_order_event_before_the_first_rows_is_not_skipped(db, instance):
    # The first batch wrote 10:05 with no watermark yet; the next one's watermark is 09:58 and an
    # out-of-order order then opens the 09:55 window: the sensor must start there.
    add_windows(db, at("10:05"))
    progress(db, None, batch=0)
    tick = Ticks(finalized_windows, instance)
    assert tick()[0] == [] and tick.cursor is None
    progress(db, at("09:58"), batch=1, recorded=NOW + timedelta(seconds=10))
    assert tick()[0] == []
    add_windows(db, at("09:55"))
    progress(db, at("10:10"), batch=2, recorded=NOW + timedelta(seconds=20))
    assert requested(tick()[0]) == [("windows-2026-11-20-09:55..2026-11-20-10:05", "2026-11-20")]


def test_a_cursor_before_the_first_day_resumes_there(db, instance):
    tick = Ticks(finalized_windows, instance)
    tick.cursor = json.dumps({"next_window": "2026-10-31T23:50:00+00:00"})
    progress(db, at("00:11", "2026-11-01"), batch=1)
    assert requested(tick()[0]) == [("windows-2026-11-01-00:00..2026-11-01-00:05", "2026-11-01")]


def test_other_queries_watermarks_do_not_count(db, instance):
    add_windows(db, at("10:00"))
    progress(db, at("11:00"), batch=5, query="product-view")
    progress(db, at("10:03"), batch=5)
    assert Ticks(finalized_windows, instance)()[0] == []


def test_windows_across_midnight_run_both_days_in_one_run(db, instance, monkeypatch):
    monkeypatch.setattr(analytics_sensors, "_clock", lambda: (NOW + timedelta(days=1)).timestamp())
    tick = Ticks(finalized_windows, instance)
    tick.cursor = json.dumps({"next_window": "2026-11-20T23:50:00+00:00"})
    progress(db, at("00:05", "2026-11-21"), batch=1)
    (request,), _ = tick()
    assert requested([request]) == [("windows-2026-11-20-23:50..2026-11-21-00:00", ("2026-11-20", "2026-11-21"))]
    assert request.partition_key is None and "dagster/partition" not in request.tags


def test_a_backlog_runs_as_one_run_over_its_days_a_week_at_most(db, instance, monkeypatch):
    monkeypatch.setattr(analytics_sensors, "_clock", lambda: (NOW + timedelta(days=10)).timestamp())
    add_windows(db, at("09:00"))
    progress(db, at("10:30"), batch=9)  # 18 final windows: 09:00 .. 10:25, one day
    tick = Ticks(finalized_windows, instance)
    assert requested(tick()[0]) == [("windows-2026-11-20-09:00..2026-11-20-10:25", "2026-11-20")]
    assert tick()[0] == []

    # A day and a half later: 432 windows over two days, one run.
    progress(db, at("22:30", "2026-11-21"), batch=10, recorded=NOW + timedelta(seconds=10))
    assert requested(tick()[0]) == [("windows-2026-11-20-10:30..2026-11-21-22:25", ("2026-11-20", "2026-11-21"))]

    # Eight days later (2,322 windows): a week of windows in one run, the rest in the next tick's.
    progress(db, at("00:00", "2026-11-30"), batch=11, recorded=NOW + timedelta(seconds=20))
    first, _ = tick()
    second, _ = tick()
    assert requested(first + second) == [
        ("windows-2026-11-21-22:30..2026-11-28-22:25", ("2026-11-21", "2026-11-28")),
        ("windows-2026-11-28-22:30..2026-11-29-23:55", ("2026-11-28", "2026-11-29"))]
    assert tick()[0] == []


def test_windows_ahead_of_the_clock_wait_until_they_have_ended(db, instance, monkeypatch):
    add_windows(db, at("11:50"))
    progress(db, at("12:20"), batch=1)  # events stamped in the future
    tick = Ticks(finalized_windows, instance)
    assert requested(tick()[0]) == [("windows-2026-11-20-11:50..2026-11-20-11:55", "2026-11-20")]
    monkeypatch.setattr(analytics_sensors, "_clock", lambda: NOW.timestamp() + 300)
    assert requested(tick()[0]) == [("window-2026-11-20-12:00", "2026-11-20")]


def test_data_before_the_first_day_starts_the_sensor_at_the_first_day(db, instance):
    add_windows(db, at("23:55", "2026-10-31"), at("00:00", "2026-11-01"))
    progress(db, at("00:07", "2026-11-01"), batch=1)
    assert requested(Ticks(finalized_windows, instance)()[0]) == [("window-2026-11-01-00:00", "2026-11-01")]


def test_unreachable_database_skips_with_the_reason(instance, monkeypatch, tmp_path):
    monkeypatch.setenv("EVENTFLOW_POSTGRES_URL", "postgresql://eventflow@127.0.0.1:9/eventflow")
    monkeypatch.setenv("EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    monkeypatch.setenv("EVENTFLOW_HOME", str(tmp_path))
    requests, skip = Ticks(finalized_windows, instance)()
    assert requests == []
    assert skip.startswith("cannot read the stream's progress: cannot connect to PostgreSQL at "
                           "postgresql://eventflow@127.0.0.1:9/eventflow")


GLOBAL = [table_key(t) for t in ("analytics_top_revenue_by_currency", "analytics_conversion_rates",
                                 "analytics_user_segments", "analytics_segment_summary")]
TOP, CONVERSION, SEGMENTS, SUMMARY = GLOBAL


class Automation:
    """Evaluations of the global analyses' automation conditions, as analytics_automation's ticks."""

    def __init__(self, instance):
        self.instance, self.cursor = instance, None

    def __call__(self, when: datetime) -> set[dg.AssetKey]:
        result = dg.evaluate_automation_conditions(defs=defs, instance=self.instance, cursor=self.cursor,
                                                   asset_selection=dg.AssetSelection.assets(*GLOBAL),
                                                   evaluation_time=when)
        self.cursor = result.cursor
        return {key for key in GLOBAL if result.get_num_requested(key)}


def new_rows(instance, *tables: str) -> None:
    """What sink_table_materializations records when the stream wrote to ``tables``."""
    for table in tables:
        instance.report_runless_asset_event(dg.AssetMaterialization(table_key(table)))


def test_global_analyses_refresh_once_a_period_after_new_rows(instance):
    evaluate = Automation(instance)
    assert evaluate(at("10:01")) == set()  # the first evaluation only starts the count
    new_rows(instance, "revenue_by_currency_5min", "conversion_funnel_5min", "orders_raw")
    assert evaluate(at("10:02")) == set()  # no new period has begun

    # 10:15: a new period, but no input changed since it began: no Spark run.
    assert evaluate(at("10:15:30")) == set()
    # New revenue rows: only the analysis reading them runs, once (the sensor's next tick: nothing).
    new_rows(instance, "revenue_by_currency_5min")
    assert evaluate(at("10:16")) == {TOP}
    assert evaluate(at("10:16:30")) == set()
    # More rows in the same period: nothing more for it; the funnel's first rows of the period
    # bring conversion; segments and their summary run together on orders_raw's.
    new_rows(instance, "revenue_by_currency_5min", "conversion_funnel_5min")
    assert evaluate(at("10:17")) == {CONVERSION}
    assert evaluate(at("10:17:30")) == set()
    new_rows(instance, "orders_raw")
    assert evaluate(at("10:18")) == {SEGMENTS, SUMMARY}
    assert evaluate(at("10:18:30")) == set()
    new_rows(instance, "revenue_by_currency_5min", "conversion_funnel_5min", "orders_raw")
    assert evaluate(at("10:29:59")) == set()

    # 10:30: rows that arrived before the period began do not count; the next ones do, all at once
    # (one tick: one run for the four tables).
    assert evaluate(at("10:30:10")) == set()
    new_rows(instance, "revenue_by_currency_5min", "conversion_funnel_5min", "orders_raw")
    assert evaluate(at("10:31")) == set(GLOBAL)
    assert evaluate(at("10:31:30")) == set()
    # The currency rates alone (a migration) are new rows for the analyses that convert to USD.
    assert evaluate(at("10:45:10")) == set()
    new_rows(instance, "currency_rates")
    assert evaluate(at("10:46")) == {TOP, SEGMENTS, SUMMARY}


def test_a_refresh_waits_while_one_is_in_progress(instance):
    evaluate = Automation(instance)
    evaluate(at("10:01"))
    # A run of top revenue has started (what the run worker records: the run, its planned materialization).
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={TOP})
    run = instance.create_run_for_job(job, asset_selection=frozenset({TOP}), status=dg.DagsterRunStatus.STARTED)
    instance.report_dagster_event(DagsterEvent.build_asset_materialization_planned_event(
        run.job_name, "postgres__analytics_top_revenue_by_currency", AssetMaterializationPlannedData(TOP)), run.run_id)
    assert evaluate(at("10:15:10")) == set()
    new_rows(instance, "revenue_by_currency_5min")
    assert evaluate(at("10:16")) == set()
    instance.report_run_failed(run)
    assert evaluate(at("10:17")) == {TOP}  # the period's refresh, once the run is over


def test_freshness_policies_warn_then_fail_as_materializations_age(instance):
    """Dagster's freshness evaluation (what the daemon's freshness loop runs), on the real definitions."""
    graph = defs.get_repository_def().asset_graph
    trends = table_key("analytics_revenue_trends")
    t0 = at("10:00")

    def states(when: datetime) -> dict:
        async def evaluate():
            context = LoadingContextForTest(instance)
            return {key: await FRESHNESS_EVALUATORS_BY_POLICY_TYPE[type(graph.get(key).freshness_policy)]()
                    .evaluate_freshness(context, graph.get(key)) for key in (trends, TOP)}
        with freeze_time(when):
            return asyncio.run(evaluate())

    F = FreshnessState
    assert states(t0) == {trends: F.UNKNOWN, TOP: F.UNKNOWN}  # never materialized
    with freeze_time(t0):
        instance.report_runless_asset_event(dg.AssetMaterialization(trends, partition="2026-11-20"))
        instance.report_runless_asset_event(dg.AssetMaterialization(TOP))
    # Trends: a window finalizes every 5 minutes; warn after 10 minutes, fail after 20.
    # Global analyses: a refresh every 15 minutes; warn after 20, fail after 35.
    assert states(t0 + timedelta(minutes=9, seconds=59)) == {trends: F.PASS, TOP: F.PASS}
    assert states(t0 + timedelta(minutes=10)) == {trends: F.WARN, TOP: F.PASS}
    assert states(t0 + timedelta(minutes=20)) == {trends: F.FAIL, TOP: F.WARN}
    assert states(t0 + timedelta(minutes=35)) == {trends: F.FAIL, TOP: F.FAIL}
