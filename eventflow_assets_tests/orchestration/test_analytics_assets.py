"""End to end: events stream in through the real streaming_job, the watermark passes windows, the
finalized_windows sensor requests their day, and the runs write exactly the final windows' rows
computed here from the produced records. Then the global analyses run as Dagster assets.

Real broker, real PostgreSQL, the session's SparkSession (through dagster-pyspark).
"""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import dagster as dg
import psycopg

from eventflow_assets.definitions import defs
from eventflow_assets.ingestion.generator import Anomalies, EventGenerator
from eventflow_assets.ingestion.producer import produce
from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.orchestration.resources import EventFlowEndpoints
from eventflow_assets.orchestration.sensors.analytics import RANGE_END_TAG, RANGE_START_TAG, finalized_windows
from eventflow_assets.orchestration.windows import trend_days
from eventflow_assets_tests.analytics import dataset
from eventflow_assets_tests.helpers import read_all, table_rows
from eventflow_assets_tests.orchestration.test_streaming import AVAILABLE_NOW, TOPICS, valid_orders
from eventflow_assets_tests.processing.expected import event_time, expected_tables, window_start
from eventflow_assets_tests.processing.test_streaming import ticking_clock

UTC = timezone.utc
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # in the past, after the first partition
DAY = "2026-11-20"
WINDOW = timedelta(minutes=5)
TRENDS = ("analytics_revenue_trends", "analytics_revenue_trends_hourly", "analytics_revenue_trends_daily",
          "analytics_revenue_trends_usd")
FIVE_MIN_KEY = dg.AssetKey(["postgres", "analytics_revenue_trends"])


def stream(cfg: dict, seed: int, start: datetime, count: int, step: float) -> None:
    gen = EventGenerator(seed=seed, clock=ticking_clock(start.timestamp(), step),
                         anomalies=Anomalies(out_of_order=0.1, malformed=0.02))
    assert produce(cfg, gen, count=count).failed == 0
    assert defs.get_job_def("streaming_job").execute_in_process(run_config=AVAILABLE_NOW).success


def revenue_watermark(url: str) -> datetime:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT watermark FROM stream_progress WHERE query_name = 'orders' "
                            "ORDER BY recorded_at DESC LIMIT 1").fetchone()[0]


def as_dataset(revenue: dict) -> list[tuple]:
    """expected_tables' revenue rows in the hand-built dataset's form, for its reference functions."""
    return [(w.strftime("%Y-%m-%d %H:%M"), c, str(total), n) for (w, c, _), (total, n, _) in revenue.items()]


def expected_trend_rows(revenue: dict, final: list[datetime]) -> dict[str, set]:
    """5-minute rows of the final windows; hourly, daily and USD rows of every period they touch,
    over every window the stream has written so far (final or not: a rollup is recomputed whole)."""
    reference = dataset.expected_trends(as_dataset(revenue))
    hours = {w.replace(minute=0) for w in final}
    days = {w.replace(hour=0, minute=0) for w in final}
    five = set(final)
    return {
        "analytics_revenue_trends": {r for r in reference["analytics_revenue_trends"] if r[0] in five},
        "analytics_revenue_trends_hourly": {r for r in reference["analytics_revenue_trends_hourly"] if r[0] in hours},
        "analytics_revenue_trends_daily": {r for r in reference["analytics_revenue_trends_daily"] if r[0] in days},
        "analytics_revenue_trends_usd": {r for r in reference["analytics_revenue_trends_usd"]
                                         if (r[0], r[1]) in {("5min", w) for w in five} | {("hour", h) for h in hours}
                                         | {("day", d) for d in days}},
    }


def test_finalized_windows_are_materialized_once_with_exact_rows(spark, eventflow_env, kafka_broker, pg_url):
    cfg = {"bootstrap.servers": kafka_broker.bootstrap_servers}
    provision_topics(cfg)
    trends_job = defs.resolve_job_def("revenue_trends_job")
    with dg.instance_for_test() as instance:
        cursor, run_keys, materialized = None, [], []

        def tick() -> list[str]:
            """The days the sensor's requests materialized, running each request as the daemon would."""
            nonlocal cursor
            context = dg.build_sensor_context(instance=instance, cursor=cursor, sensor_name="finalized_windows",
                                              resources={"eventflow": EventFlowEndpoints()})
            result = finalized_windows(context)
            if isinstance(result, dg.SkipReason):
                return []
            cursor = result.cursor or cursor
            covered = []
            for request in result.run_requests:
                run = trends_job.execute_in_process(partition_key=request.partition_key, instance=instance,
                                                    tags={**request.tags, "dagster/run_key": request.run_key})
                assert run.success
                run_keys.append(request.run_key)
                covered += [request.partition_key] if request.partition_key else trend_days.get_partition_keys_in_range(
                    dg.PartitionKeyRange(request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]))
            materialized.extend(covered)
            return covered

        # 1. Twenty minutes of events from 10:00. availableNow ends with a batch that moves the
        # watermark to the latest order time minus 10 minutes: the windows before it are final.
        stream(cfg, 1, T0, count=1200, step=1.0)
        records = read_all(kafka_broker.bootstrap_servers, TOPICS)
        orders = valid_orders(records)
        watermark = max(event_time(o) for o in orders) - timedelta(minutes=10)
        assert revenue_watermark(pg_url) == watermark
        first_window = min(window_start(event_time(o)) for o in orders)
        final = [first_window + i * WINDOW for i in range((window_start(watermark) - first_window) // WINDOW)]
        assert len(final) >= 2
        assert tick() == [DAY]  # one run for the day's windows that became final
        assert tick() == []  # nothing twice
        revenue = expected_tables(records)["revenue"]
        assert {t: table_rows(pg_url, t) for t in TRENDS} == expected_trend_rows(revenue, final)

        # 2. Events from 10:40: the watermark jumps past the windows up to 10:30, including the
        # empty ones between the bursts: they finalize late, all at once, and the day runs again.
        stream(cfg, 2, T0 + timedelta(minutes=40), count=300, step=1.0)
        records = read_all(kafka_broker.bootstrap_servers, TOPICS)
        watermark = max(event_time(o) for o in valid_orders(records)) - timedelta(minutes=10)
        assert revenue_watermark(pg_url) == watermark
        later = [final[-1] + i * WINDOW for i in range(1, (window_start(watermark) - final[-1]) // WINDOW)]
        assert later[-1] >= T0 + timedelta(minutes=25)
        revenue = expected_tables(records)["revenue"]
        empty = [w for w in later if not any(k[0] == w for k in revenue)]
        assert empty, "the gap between the bursts has windows without orders"
        assert tick() == [DAY]
        assert tick() == []

        final += later
        assert {t: table_rows(pg_url, t) for t in TRENDS} == expected_trend_rows(revenue, final)
        assert instance.get_materialized_partitions(FIVE_MIN_KEY) == {DAY}
        assert materialized == [DAY, DAY]
        assert len(run_keys) == len(set(run_keys)) == 2

        # Each materialization says what its run wrote: the day's windows final at the time, from
        # midnight (the empty windows before the data included), newest first.
        midnight = T0.replace(hour=0)
        found = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=FIVE_MIN_KEY, asset_partitions=[DAY]), limit=10).records
        assert len(found) == 2
        for record, through in zip(found, (later[-1] + WINDOW, final[len(final) - len(later) - 1] + WINDOW), strict=False):
            meta = {k: v.value for k, v in record.asset_materialization.metadata.items()}
            rows = [(c, total, n) for (start, c, _), (total, n, _) in revenue.items() if start < through]
            assert (meta["window_start"], meta["window_end"], meta["windows"]) == (
                midnight.isoformat(), through.isoformat(), (through - midnight) // WINDOW)
            assert meta["dagster/row_count"] == len(rows)
            assert meta["orders"] == sum(n for _, _, n in rows)
            expected_usd = sum((dataset.money(total * dataset.RATES[c]) for c, total, _ in rows), Decimal(0))
            assert meta["revenue_usd"] == float(expected_usd)
            assert "range_orders" not in meta  # one day's totals: a per-day plot can use them
            assert len(meta["preview"].records) == min(len(rows), 20)


def test_global_analytics_job_materializes_the_global_tables(spark, eventflow_env, kafka_broker, pg_url):
    cfg = {"bootstrap.servers": kafka_broker.bootstrap_servers}
    provision_topics(cfg)
    stream(cfg, 5, T0, count=1500, step=0.5)
    tables = expected_tables(read_all(kafka_broker.bootstrap_servers, TOPICS))
    revenue = as_dataset(tables["revenue"])
    funnel = [(w.strftime("%Y-%m-%d %H:%M"), u, v, o) for (w, u, _), (v, o) in tables["funnel"].items()]
    orders = [(user, str(price), currency) for user, _, price, currency, _ in tables["orders_raw"].values()]

    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("global_analytics_job").execute_in_process(instance=instance)
    assert result.success
    assert table_rows(pg_url, "analytics_top_revenue_by_currency") == dataset.expected_top_revenue(revenue)
    assert table_rows(pg_url, "analytics_conversion_rates") == dataset.expected_conversion(funnel)
    users, summary = dataset.expected_segments(orders)
    assert table_rows(pg_url, "analytics_user_segments") == users
    assert table_rows(pg_url, "analytics_segment_summary") == summary

    meta = {e.asset_key.path[1]: {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}
    assert set(meta) == {"analytics_top_revenue_by_currency", "analytics_conversion_rates",
                         "analytics_user_segments", "analytics_segment_summary"}
    assert meta["analytics_top_revenue_by_currency"]["orders"] == len(tables["orders_raw"])
    assert meta["analytics_top_revenue_by_currency"]["revenue_usd"] == float(
        sum(row[4] for row in dataset.expected_top_revenue(revenue)))
    views = sum(v for _, _, v, _ in funnel)
    viewers_orders = {}
    for _, user, v, o in funnel:
        viewers_orders.setdefault(user, [0, 0])
        viewers_orders[user][0] += v
        viewers_orders[user][1] += o
    viewed_orders = sum(o for v, o in viewers_orders.values() if v)
    assert meta["analytics_conversion_rates"]["users_with_views"] == sum(1 for v, _ in viewers_orders.values() if v)
    assert meta["analytics_conversion_rates"]["conversion_pct"] == round(viewed_orders * 100 / views, 2)
    for name, count, revenue_usd, _, _ in summary:
        assert meta["analytics_segment_summary"][f"{name.lower()}_users"] == count
        assert meta["analytics_segment_summary"][f"{name.lower()}_revenue_usd"] == float(revenue_usd)
    assert len(meta["analytics_segment_summary"]["preview"].records) == 4
    assert meta["analytics_user_segments"]["users"] == len(users)


def test_a_backfill_of_a_range_is_one_run_that_materializes_every_day(spark, loaded_url, tmp_path, monkeypatch):
    """What the UI's backfill of a range launches (single-run backfill policy), on the hand-built dataset
    (2026-11-23 23:55 to 2026-11-24 01:15): nothing before a window is final, then every day at once."""
    monkeypatch.setenv("EVENTFLOW_POSTGRES_URL", loaded_url)
    monkeypatch.setenv("EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")  # never contacted
    monkeypatch.setenv("EVENTFLOW_HOME", str(tmp_path))
    days = {"dagster/asset_partition_range_start": "2026-11-23", "dagster/asset_partition_range_end": "2026-11-24"}
    job = defs.resolve_job_def("revenue_trends_job")
    with dg.instance_for_test() as instance:
        # No order streamed: no window is final, the run fails saying so and writes nothing.
        result = job.execute_in_process(instance=instance, tags=days, raise_on_error=False)
        assert not result.success
        (failure,) = [e for e in result.all_events if e.is_step_failure]
        assert failure.step_failure_data.error.message == (
            "dagster._core.definitions.events.Failure: no 5-minute window from 2026-11-23 00:00 to 2026-11-25 00:00 "
            "UTC is final yet: the orders query's watermark is not set (no order streamed)\n")
        assert {t: table_rows(loaded_url, t) for t in TRENDS} == {t: set() for t in TRENDS}

        with psycopg.connect(loaded_url) as conn:  # the stream's watermark, past the data
            conn.execute("""INSERT INTO stream_progress (query_name, checkpoint_id, batch_id, recorded_at, watermark,
                                                         input_rows, output_rows, late_rows, rejected_rows, duration_ms)
                            VALUES ('orders', 'c1', 1, now(), '2026-11-24 01:27:00+00', 0, 0, 0, 0, 1)""")
        assert job.execute_in_process(instance=instance, tags=days).success
        for table in TRENDS:
            assert instance.get_materialized_partitions(dg.AssetKey(["postgres", table])) == {"2026-11-23",
                                                                                             "2026-11-24"}
        # Both days record the run's totals, named range_*: neither day's own.
        (record,) = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=FIVE_MIN_KEY, asset_partitions=["2026-11-23"]), limit=10).records
        meta = record.asset_materialization.metadata
        assert "orders" not in meta and meta["range_orders"].value == sum(
            row[4] for row in dataset.expected_trends()["analytics_revenue_trends"])  # order_count
    assert {t: table_rows(loaded_url, t) for t in TRENDS} == dataset.expected_trends()
