"""The analytics sensors over cursor transitions, reading a real PostgreSQL's stream_progress.

Progress and window rows are written by hand here, as the stream would; the end-to-end test
(test_analytics_assets.py) gets them from the real streaming job.
"""

import json
from datetime import datetime, timedelta, timezone

import dagster as dg
import psycopg
import pytest

from eventflow_assets.definitions import defs
from eventflow_assets.orchestration import analytics_sensors
from eventflow_assets.orchestration.analytics_sensors import finalized_windows, global_analytics_refresh
from eventflow_assets.orchestration.resources import EventFlowEndpoints
from eventflow_assets.storage.schema import apply_schema
from eventflow_assets_tests.orchestration.test_sensors import S, stream_run

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


def keys(requests) -> list[str]:
    return [r.partition_key for r in requests]


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

    # Several windows finalize at once.
    progress(db, at("10:15:30"), batch=2, recorded=NOW + timedelta(seconds=20))
    requests, skip = tick()
    assert (keys(requests), skip) == (["2026-11-20-10:00", "2026-11-20-10:05", "2026-11-20-10:10"], None)
    assert [r.run_key for r in requests] == ["window-2026-11-20-10:00", "window-2026-11-20-10:05",
                                             "window-2026-11-20-10:10"]
    assert [(r.tags["eventflow/watermark"], r.tags["dagster/partition"]) for r in requests] == [
        ("2026-11-20T10:15:30+00:00", k) for k in keys(requests)]
    assert json.loads(tick.cursor) == {"next_window": "2026-11-20T10:15:00+00:00"}

    # Same watermark: nothing again.
    assert keys(tick()[0]) == []

    # The stream stalls, then its watermark jumps: windows finalize late, all of them at once,
    # including the empty 10:15.
    progress(db, at("10:31:00"), batch=3, recorded=NOW + timedelta(seconds=30))
    assert keys(tick()[0]) == ["2026-11-20-10:15", "2026-11-20-10:20", "2026-11-20-10:25"]

    # A new checkpoint restarts batch ids at 0 with an older watermark: the row recorded last
    # counts, not the highest batch id, and no window is requested twice.
    progress(db, at("10:20:00"), batch=0, checkpoint="c2", recorded=NOW + timedelta(seconds=40))
    assert keys(tick()[0]) == []
    progress(db, at("10:36:00"), batch=1, checkpoint="c2", recorded=NOW + timedelta(seconds=50))
    assert keys(tick()[0]) == ["2026-11-20-10:30"]

    assert len(tick.run_keys) == len(set(tick.run_keys)) == 7


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
    assert keys(tick()[0]) == ["2026-11-20-09:55", "2026-11-20-10:00", "2026-11-20-10:05"]


def test_a_cursor_before_a_moved_first_partition_resumes_there(db, instance):
    tick = Ticks(finalized_windows, instance)
    tick.cursor = json.dumps({"next_window": "2026-10-31T23:50:00+00:00"})
    progress(db, at("00:11", "2026-11-01"), batch=1)
    assert keys(tick()[0]) == ["2026-11-01-00:00", "2026-11-01-00:05"]


def test_other_queries_watermarks_do_not_count(db, instance):
    add_windows(db, at("10:00"))
    progress(db, at("11:00"), batch=5, query="product-view")
    progress(db, at("10:03"), batch=5)
    assert keys(Ticks(finalized_windows, instance)()[0]) == []


def test_a_backlog_runs_as_ranged_runs_of_at_most_a_day(db, instance, monkeypatch):
    monkeypatch.setattr(analytics_sensors, "_clock", lambda: (NOW + timedelta(days=2)).timestamp())
    add_windows(db, at("09:00"))
    progress(db, at("10:30"), batch=9)  # 18 final windows: 09:00 .. 10:25
    tick = Ticks(finalized_windows, instance)
    requests, _ = tick()
    assert [(r.run_key, r.partition_key, r.tags) for r in requests] == [(
        "windows-2026-11-20-09:00..2026-11-20-10:25", None,
        {"eventflow/watermark": "2026-11-20T10:30:00+00:00", "dagster/asset_partition_range_start": "2026-11-20-09:00",
         "dagster/asset_partition_range_end": "2026-11-20-10:25", "dagster/sensor_name": "finalized_windows"})]
    assert tick()[0] == []

    # A day and a half later: 288 windows in one run, the rest in the next tick's run.
    progress(db, at("22:30", "2026-11-21"), batch=10, recorded=NOW + timedelta(seconds=10))
    first, _ = tick()
    second, _ = tick()
    assert [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
            for r in first + second] == [("2026-11-20-10:30", "2026-11-21-10:25"), ("2026-11-21-10:30", "2026-11-21-22:25")]
    assert tick()[0] == []


def test_up_to_three_windows_get_a_run_each_more_get_one_ranged_run(db, instance):
    add_windows(db, at("10:00"))
    tick = Ticks(finalized_windows, instance)
    progress(db, at("10:15"), batch=1)
    assert [r.run_key for r in tick()[0]] == ["window-2026-11-20-10:00", "window-2026-11-20-10:05",
                                              "window-2026-11-20-10:10"]
    progress(db, at("10:35"), batch=2, recorded=NOW + timedelta(seconds=10))
    assert [r.run_key for r in tick()[0]] == ["windows-2026-11-20-10:15..2026-11-20-10:30"]


def test_windows_ahead_of_the_clock_wait_until_they_are_partitions(db, instance, monkeypatch):
    add_windows(db, at("11:50"))
    progress(db, at("12:20"), batch=1)  # events stamped in the future
    tick = Ticks(finalized_windows, instance)
    assert keys(tick()[0]) == ["2026-11-20-11:50", "2026-11-20-11:55"]
    monkeypatch.setattr(analytics_sensors, "_clock", lambda: NOW.timestamp() + 300)
    assert keys(tick()[0]) == ["2026-11-20-12:00"]


def test_data_before_the_first_partition_starts_the_sensor_at_the_first_partition(db, instance):
    add_windows(db, at("23:55", "2026-10-31"), at("00:00", "2026-11-01"))
    progress(db, at("00:07", "2026-11-01"), batch=1)
    assert keys(Ticks(finalized_windows, instance)()[0]) == ["2026-11-01-00:00"]


def test_unreachable_database_skips_with_the_reason(instance, monkeypatch, tmp_path):
    monkeypatch.setenv("EVENTFLOW_POSTGRES_URL", "postgresql://eventflow@127.0.0.1:9/eventflow")
    monkeypatch.setenv("EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    monkeypatch.setenv("EVENTFLOW_HOME", str(tmp_path))
    requests, skip = Ticks(finalized_windows, instance)()
    assert requests == []
    assert skip.startswith("cannot read the stream's progress: cannot connect to PostgreSQL at "
                           "postgresql://eventflow@127.0.0.1:9/eventflow")


def test_global_refresh_follows_finalized_windows_at_most_every_three_minutes(db, instance, monkeypatch):
    tick = Ticks(global_analytics_refresh, instance)
    assert tick() == ([], "the orders query has no watermark yet (no order streamed)")

    progress(db, at("10:12"), batch=1)
    requests, _ = tick()
    assert [(r.run_key, r.tags["eventflow/final_through"]) for r in requests] == [
        ("global-through-2026-11-20T10:10:00+00:00", "2026-11-20T10:10:00+00:00")]
    assert json.loads(tick.cursor) == {"final_through": "2026-11-20T10:10:00+00:00", "requested_at": NOW.timestamp()}

    progress(db, at("10:14:59"), batch=2, recorded=NOW + timedelta(seconds=10))
    assert tick() == ([], "no window has finalized since the refresh through 2026-11-20 10:10:00 UTC")

    progress(db, at("10:15"), batch=3, recorded=NOW + timedelta(seconds=20))
    monkeypatch.setattr(analytics_sensors, "_clock", lambda: NOW.timestamp() + 60)
    assert tick() == ([], "windows through 2026-11-20 10:15:00 UTC are final; last refresh requested 60s ago, "
                          "next one in 120s at the earliest")

    monkeypatch.setattr(analytics_sensors, "_clock", lambda: NOW.timestamp() + 180)
    run = stream_run(instance, S.STARTED, job_name="global_analytics_job")
    assert tick() == ([], f"global_analytics_job run {run.run_id} is STARTED; waiting for it to finish")

    stream_run(instance, S.SUCCESS, job_name="global_analytics_job")
    instance.report_run_canceled(run)
    requests, _ = tick()
    assert [r.run_key for r in requests] == ["global-through-2026-11-20T10:15:00+00:00"]
    assert len(tick.run_keys) == len(set(tick.run_keys)) == 2
