"""The sink tables' materializations from ``stream_progress``, cursor state by cursor state: rows
written as the stream writes them (the ledger row, then ``record_progress``), on real PostgreSQL;
then a real stream run outside Dagster."""

import json
from datetime import datetime, timedelta, timezone

import dagster as dg
import psycopg
import pytest
from psycopg.types.json import Jsonb

from eventflow_assets.ingestion.generator import Anomalies, EventGenerator
from eventflow_assets.ingestion.producer import produce
from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.orchestration.resources import EventFlowEndpoints
from eventflow_assets.orchestration.sensors import materializations as stream_assets
from eventflow_assets.orchestration.sensors.materializations import sink_table_materializations
from eventflow_assets.processing.progress import record_progress
from eventflow_assets.processing.queries import StreamConfig
from eventflow_assets.processing.runner import run_streaming
from eventflow_assets.settings import Endpoints
from eventflow_assets.storage.schema import apply_schema
from eventflow_assets_tests.helpers import contract_violation, read_all
from eventflow_assets_tests.processing.expected import expected_tables
from eventflow_assets_tests.processing.test_streaming import T0, ticking_clock

RAW, REVENUE, FUNNEL, REJECTED = "orders_raw", "revenue_by_currency_5min", "conversion_funnel_5min", "rejected_events"
W = datetime(2026, 12, 1, 6, 0, tzinfo=timezone.utc)  # watermarks (event time)
CLOCK = 1_000_000.0  # the sensor's clock


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def db(pg_url, monkeypatch):
    """The schema applied, the resource pointed at it; returns (url, a base time just before now)."""
    for name in ("EVENTFLOW_HOME", "EVENTFLOW_POSTGRES_URL", "EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EVENTFLOW_POSTGRES_URL", pg_url)
    monkeypatch.setenv("EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")  # resolved, never contacted
    apply_schema(pg_url)
    with psycopg.connect(pg_url) as conn:
        base = conn.execute("SELECT date_trunc('second', now())").fetchone()[0]
    return pg_url, base.astimezone(timezone.utc)


def batch(db, query, batch_id, at, *, checkpoint="ck-a", tables=None, input_rows=0, late=0, rejected=0,
          duration_ms=1000, lag=None, watermark=None) -> None:
    """One micro-batch as the stream records it: the sink's ledger row, then the listener's
    progress row (which copies the ledger's table_rows); ``recorded_at`` set to ``at``."""
    url, _ = db
    tables = tables or {}
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO stream_batches (query_name, checkpoint_id, batch_id, row_count, table_rows) "
                     "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                     (query, checkpoint, batch_id, sum(tables.values()), Jsonb(tables)))
    record_progress(url, {"query_name": query, "checkpoint_id": checkpoint, "batch_id": batch_id,
                          "watermark": watermark, "input_rows": input_rows, "late_rows": late,
                          "rejected_rows": rejected, "duration_ms": duration_ms, "lag": lag or {},
                          "read_offsets": {}})
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE stream_progress SET recorded_at = %s WHERE query_name = %s AND checkpoint_id = %s "
                     "AND batch_id = %s", (at, query, checkpoint, batch_id))


SINK_TABLES = (RAW, REVENUE, FUNNEL, REJECTED)


def table_sizes(url) -> dict[str, int]:
    """Each sink table's pg_total_relation_size, as the test reads it: summed over its partitions
    where it has them (orders_raw is partitioned by day)."""
    with psycopg.connect(url) as conn:
        return {t: sum(conn.execute("SELECT pg_total_relation_size(%s::regclass)", (leaf,)).fetchone()[0]
                       for leaf in _leaves(conn, t)) for t in SINK_TABLES}


def _leaves(conn, table: str) -> list[str]:
    """The tables that hold the rows of ``table``: its partitions, or itself when not partitioned."""
    kind = conn.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", (table,)).fetchone()[0]
    if kind != "p":
        return [table]
    return [leaf for (leaf,) in conn.execute(
        "SELECT relid::regclass::text FROM pg_partition_tree(%s::regclass) WHERE isleaf", (table,)).fetchall()]


def no_autovacuum(url) -> None:
    """No vacuum between the sensor's size read and the test's: off on every table that holds rows
    (a partitioned table's own setting is refused; the sink makes new day partitions as it goes)."""
    with psycopg.connect(url) as conn:
        for table in SINK_TABLES:
            for leaf in _leaves(conn, table):
                conn.execute(f"ALTER TABLE {leaf} SET (autovacuum_enabled = off)")


def evaluate(instance, monkeypatch, cursor=None, clock=CLOCK):
    monkeypatch.setattr(stream_assets, "_clock", lambda: clock)
    context = dg.build_sensor_context(instance=instance, cursor=cursor, sensor_name="sink_table_materializations",
                                      resources={"eventflow": EventFlowEndpoints()})
    return sink_table_materializations(context)


def reported(result) -> dict[str, dict]:
    assert all(isinstance(e, dg.AssetMaterialization) for e in result.asset_events)
    out = {}
    for e in result.asset_events:
        assert e.asset_key.path[0] == "postgres"
        out[e.asset_key.path[1]] = {k: v.value for k, v in e.metadata.items()}
    assert len(out) == len(result.asset_events)  # one event per table
    return out


def test_no_progress_yet_skips_and_keeps_no_cursor(db, instance, monkeypatch):
    result = evaluate(instance, monkeypatch)
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == ("no new micro-batch recorded in stream_progress in the last 60 minutes "
                                   "(has the stream run?)")
    # A batch older than the first look-back is history: a new cursor starts after it.
    _, base = db
    batch(db, "orders", 0, base - timedelta(hours=2), tables={RAW: 5})
    assert isinstance(evaluate(instance, monkeypatch), dg.SkipReason)


def test_cursor_transitions_new_batches_the_minute_bound_and_a_new_checkpoint(db, instance, monkeypatch):
    _, base = db
    t = {s: base - timedelta(seconds=s) for s in (50, 45, 40, 35, 20, 10)}
    w1, w2, w3 = W, W + timedelta(seconds=30), W - timedelta(minutes=2)
    batch(db, "orders", 0, t[50], tables={RAW: 8, REVENUE: 3, FUNNEL: 4, REJECTED: 2}, input_rows=10, rejected=2,
          duration_ms=2000, lag={"orders:0": 5, "orders:1": 0}, watermark=w1)
    batch(db, "product-view", 0, t[45], tables={FUNNEL: 7}, input_rows=20, duration_ms=3000,
          lag={"product-view:0": 4}, watermark=w3)
    batch(db, "orders", 1, t[40], tables={RAW: 5, REVENUE: 2, FUNNEL: 5}, input_rows=5, late=1,
          duration_ms=1000, lag={"orders:0": 1, "orders:1": 2}, watermark=w2)
    batch(db, "user-events", 0, t[35], input_rows=4, duration_ms=500)  # wrote nothing

    # New batches: one materialization per table that received rows, over every batch of its queries.
    first = evaluate(instance, monkeypatch)
    size = table_sizes(db[0])  # empty tables: their indexes' first pages
    start = (t[50] - timedelta(seconds=2)).timestamp()  # the earliest batch's start (first report)
    orders_only = {"batches": 2, "batches_with_rows": 2, "input_rows": 15, "late_rows": 1, "rejected_rows": 2,
                   "lag": 3, "batch_duration_s_avg": 1.5, "batch_duration_s_max": 2.0,
                   "period_s": t[40].timestamp() - start, "watermark": w2.timestamp(),
                   "watermark_delay_s": (t[40] - w2).total_seconds(), "queries": "orders 0-1",
                   "dagster/row_count": 0}  # the ledger rows alone: the tables hold no rows
    assert reported(first) == {
        RAW: {**orders_only, "rows_written": 13, "rows_per_s": round(13 / 12, 3), "table_size_bytes": size[RAW]},
        REVENUE: {**orders_only, "rows_written": 5, "rows_per_s": round(5 / 12, 3),
                  "table_size_bytes": size[REVENUE]},
        FUNNEL: {"rows_written": 16, "rows_per_s": round(16 / 12, 3), "period_s": 12.0, "batches": 3,
                 "batches_with_rows": 3, "input_rows": 35, "late_rows": 1, "rejected_rows": 2, "lag": 7,
                 "batch_duration_s_avg": 2.0, "batch_duration_s_max": 3.0, "watermark": w3.timestamp(),
                 "watermark_delay_s": (t[40] - w3).total_seconds(), "queries": "orders 0-1, product-view 0",
                 "dagster/row_count": 0, "table_size_bytes": size[FUNNEL]},
        REJECTED: {"rows_written": 2, "rows_per_s": round(2 / 17, 3), "period_s": 17.0, "batches": 4,
                   "batches_with_rows": 1, "input_rows": 39, "late_rows": 1, "rejected_rows": 2, "lag": 7,
                   "batch_duration_s_avg": 1.625, "batch_duration_s_max": 3.0, "watermark": w3.timestamp(),
                   "watermark_delay_s": (t[35] - w3).total_seconds(),
                   "queries": "orders 0-1, product-view 0, user-events 0", "dagster/row_count": 0,
                   "table_size_bytes": size[REJECTED]},
    }
    assert first.asset_events[0].description == (
        f"13 rows from 2 micro-batches recorded {t[50]:%Y-%m-%d %H:%M:%S} UTC to {t[40]:%Y-%m-%d %H:%M:%S} UTC "
        "(orders 0-1)")
    # Stored as the daemon stores a sensor's asset events: runless materializations of the tables.
    for event in first.asset_events:
        instance.report_runless_asset_event(event)
    stored = instance.get_latest_materialization_event(dg.AssetKey(["postgres", FUNNEL]))
    assert stored.run_id == "" and stored.asset_materialization.metadata["rows_written"].value == 16
    cursor = json.loads(first.cursor)
    assert cursor == {"until": t[35].isoformat(), "reported_at": CLOCK, "batches": {
        "orders": {"ck-a": {"batch": 1, "at": t[40].timestamp()}},
        "product-view": {"ck-a": {"batch": 0, "at": t[45].timestamp()}},
        "user-events": {"ck-a": {"batch": 0, "at": t[35].timestamp()}}}}

    # Nothing new a minute later.
    idle = evaluate(instance, monkeypatch, first.cursor, CLOCK + 61)
    assert isinstance(idle, dg.SkipReason)
    assert idle.skip_message == f"no new micro-batch recorded in stream_progress since {t[35]:%Y-%m-%d %H:%M:%S} UTC"

    # A batch after the report waits for the next tick: at most one event per table per minute
    # (the daemon's interval); an evaluation within REPORT_GUARD_S of the report reports nothing.
    batch(db, "orders", 2, t[20], tables={RAW: 6}, input_rows=6, duration_ms=1000, lag={"orders:0": 0},
          watermark=w2)
    for too_soon in (0, 30, stream_assets.REPORT_GUARD_S - 0.1):
        held = evaluate(instance, monkeypatch, first.cursor, CLOCK + too_soon)
        assert isinstance(held, dg.SkipReason)
        assert held.skip_message == (f"reported {too_soon:.0f}s ago: at most one report per table a minute; "
                                     "newer batches wait for the next tick")
    assert stream_assets.REPORT_GUARD_S <= stream_assets.REPORT_INTERVAL_S == 60
    assert sink_table_materializations.minimum_interval_seconds == 60
    later = evaluate(instance, monkeypatch, first.cursor, CLOCK + 60)
    assert reported(later) == {RAW: {
        "rows_written": 6, "period_s": 15.0, "rows_per_s": 0.4, "batches": 1, "batches_with_rows": 1,
        "input_rows": 6, "late_rows": 0, "rejected_rows": 0, "lag": 0, "batch_duration_s_avg": 1.0,
        "batch_duration_s_max": 1.0, "watermark": w2.timestamp(), "watermark_delay_s": (t[20] - w2).total_seconds(),
        "queries": "orders 2", "dagster/row_count": 0, "table_size_bytes": size[RAW]}}
    assert json.loads(later.cursor)["reported_at"] == CLOCK + 60

    # A new checkpoint (new query id): its batch ids restart at 0 and are new. The old checkpoint's
    # batch 1 recorded again (a replay upserts its row, moving recorded_at) is not counted twice.
    batch(db, "orders", 0, t[10], checkpoint="ck-b", tables={RAW: 3}, input_rows=3, lag={"orders:0": 0})
    batch(db, "orders", 1, t[10], tables={RAW: 5, REVENUE: 2, FUNNEL: 5}, input_rows=5)
    fresh = evaluate(instance, monkeypatch, later.cursor, CLOCK + 120)
    assert {k: (m["rows_written"], m["batches"], m["queries"]) for k, m in reported(fresh).items()} == {
        RAW: (3, 1, "orders 0")}
    assert "watermark" not in reported(fresh)[RAW]  # ck-b has no watermark yet
    assert json.loads(fresh.cursor)["batches"]["orders"] == {
        "ck-b": {"batch": 0, "at": t[10].timestamp()}, "ck-a": {"batch": 2, "at": t[20].timestamp()}}


def test_batches_that_wrote_nothing_advance_the_cursor_without_events(db, instance, monkeypatch):
    _, base = db
    batch(db, "user-events", 0, base - timedelta(seconds=30), input_rows=3)
    batch(db, "orders", 0, base - timedelta(seconds=20), input_rows=0)
    result = evaluate(instance, monkeypatch)
    assert result.asset_events == []
    assert result.skip_reason.skip_message == "2 new micro-batches wrote no rows to the sink tables"
    cursor = json.loads(result.cursor)
    assert cursor["reported_at"] is None and cursor["until"] == (base - timedelta(seconds=20)).isoformat()
    # No report was made, so the next batch's rows are reported at once.
    batch(db, "orders", 1, base - timedelta(seconds=10), tables={RAW: 1}, input_rows=1)
    assert reported(evaluate(instance, monkeypatch, result.cursor, CLOCK + 1))[RAW]["rows_written"] == 1


def test_a_stream_run_outside_dagster_is_reported_exactly(spark, kafka_broker, pg_url, instance, monkeypatch,
                                                          tmp_path):
    """The queries run as jobs/streaming_app.py runs them (run_streaming, no Dagster anywhere); the
    sensor, with no cursor, reports what they wrote: rows per table from the topics' content."""
    for name in ("EVENTFLOW_HOME", "EVENTFLOW_POSTGRES_URL", "EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EVENTFLOW_POSTGRES_URL", pg_url)
    monkeypatch.setenv("EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS", kafka_broker.bootstrap_servers)
    apply_schema(pg_url)
    no_autovacuum(pg_url)
    empty = table_sizes(pg_url)
    cfg = {"bootstrap.servers": kafka_broker.bootstrap_servers}
    provision_topics(cfg)
    gen = EventGenerator(seed=43, clock=ticking_clock(T0, 0.2), anomalies=Anomalies(malformed=0.05))
    assert produce(cfg, gen, count=1500).failed == 0
    run_streaming(spark, Endpoints(kafka_broker.bootstrap_servers, pg_url, pg_url), tmp_path / "chk",
                  StreamConfig(available_now=True))
    no_autovacuum(pg_url)  # the day partitions the stream made

    records = read_all(kafka_broker.bootstrap_servers, ("user-events", "product-view", "orders"))
    expected = expected_tables(records)
    result = evaluate(instance, monkeypatch)
    got = reported(result)
    assert {t: m["rows_written"] for t, m in got.items() if t != FUNNEL} == {
        RAW: len(expected["orders_raw"]), REVENUE: len(expected["revenue"]), REJECTED: len(expected["rejected"])}
    # Every (window, user) row of the funnel was written once by each query that counted into it.
    assert got[FUNNEL]["rows_written"] == (sum(1 for views, _ in expected["funnel"].values() if views)
                                           + sum(1 for _, n in expected["funnel"].values() if n))
    # The catalog's row count: what each table holds when the sensor reports.
    assert {t: m["dagster/row_count"] for t, m in got.items()} == {
        RAW: len(expected["orders_raw"]), REVENUE: len(expected["revenue"]), FUNNEL: len(expected["funnel"]),
        REJECTED: len(expected["rejected"])}
    # Each table's size on disk when reported, as PostgreSQL reports it.
    sizes = table_sizes(pg_url)
    assert {t: m["table_size_bytes"] for t, m in got.items()} == sizes
    assert all(sizes[t] > empty[t] for t in sizes)  # every table received rows
    orders = [r for r in records if r.topic() == "orders"]
    assert got[RAW]["input_rows"] == len(orders)
    assert got[RAW]["rejected_rows"] == sum(1 for r in orders if contract_violation("orders", r.value()))
    assert got[REJECTED]["input_rows"] == len(records)
    assert got[REJECTED]["rejected_rows"] == len(expected["rejected"]) > 0
    assert {m["lag"] for m in got.values()} == {0}  # caught up
    with psycopg.connect(pg_url) as conn:
        batches = dict(conn.execute("SELECT query_name, count(*) FROM stream_progress GROUP BY 1").fetchall())
    assert got[RAW]["batches"] == batches["orders"] and got[REJECTED]["batches"] == sum(batches.values())
    # Run again: nothing new, nothing reported twice.
    again = evaluate(instance, monkeypatch, result.cursor, CLOCK + 60)
    assert isinstance(again, dg.SkipReason)
