"""orders_archive_job through Dagster on a real PostgreSQL: old days of orders_raw detached, exported
to gzip CSV (read back here with the csv module), dropped; recent days untouched; a run interrupted
at any step finished by the next one; and the daily schedule."""

import csv
import gzip
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from eventflow_assets.orchestration.jobs import orders_archive_job
from eventflow_assets.orchestration.resources import EventFlowEndpoints
from eventflow_assets.orchestration.schedules import orders_archive_schedule
from eventflow_assets.processing.sinks import SINKS, ExactlyOnceSink
from eventflow_assets.storage.schema import apply_schema
from eventflow_assets_tests.processing.batches import batch, order

UTC = timezone.utc
TODAY = datetime.now(UTC).date()
HEADER = ["order_id", "user_id", "product_id", "price", "currency", "timestamp", "kafka_partition", "kafka_offset",
          "ingested_at"]


@pytest.fixture
def archive_env(pg_url, monkeypatch, tmp_path):
    monkeypatch.delenv("EVENTFLOW_RETENTION_ORDERS_DAYS", raising=False)
    monkeypatch.setenv("EVENTFLOW_POSTGRES_URL", pg_url)
    monkeypatch.setenv("EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")  # never contacted by this job
    monkeypatch.setenv("EVENTFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EVENTFLOW_ARCHIVE_DIR", str(tmp_path / "archive"))
    apply_schema(pg_url)
    return pg_url


def _at(days_ago: int, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days_ago), time(hour, minute), UTC)


def _write(url, rows, batch_id=0):
    """Through the orders sink, as the stream writes them; offsets number the rows."""
    rows = [order(oid, price, user=user, offset=batch_id * 100 + n, ts=ts) for n, (oid, price, user, ts) in enumerate(rows)]
    ExactlyOnceSink(url, "orders", SINKS["orders"]).write(batch("orders", rows), batch_id)


def _read_archive(path: Path) -> list[list[str]]:
    with gzip.open(path, "rt", newline="") as f:
        return list(csv.reader(f))


def _parsed(records):
    """(order_id, user_id, product_id, price, currency, timestamp, partition, offset) of the CSV records."""
    return [(r[0], r[1], r[2], Decimal(r[3]), r[4], datetime.fromisoformat(r[5]), int(r[6]), int(r[7]))
            for r in records]


def _partitions(url) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT inhrelid::regclass::text FROM pg_inherits "
                                           "WHERE inhparent = 'orders_raw'::regclass")}


def _metadata(result) -> dict:
    (event,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_OUTPUT]
    return {k: v.value for k, v in event.step_output_data.metadata.items()}


def _name(days_ago: int) -> str:
    return f"orders_raw_p{TODAY - timedelta(days=days_ago):%Y%m%d}"


def test_days_past_the_retention_are_detached_exported_and_dropped(archive_env, monkeypatch, tmp_path):
    _write(archive_env, [("a", "10.50", "u1", _at(12, 23, 59)), ("b", "20.00", "u2", _at(12, 8)),
                         ("c", "30.25", "u1", _at(8, 0)), ("d", "1.00", "u3", _at(7, 0)),
                         ("e", "2.00", "u3", _at(1, 12)), ("f", "3.00", "u4", _at(0, 0))])
    with psycopg.connect(archive_env) as conn:
        ingested = dict(conn.execute("SELECT order_id, ingested_at FROM orders_raw").fetchall())
    monkeypatch.setenv("EVENTFLOW_RETENTION_ORDERS_DAYS", "7")

    result = orders_archive_job.execute_in_process(resources={"eventflow": EventFlowEndpoints()})

    assert result.success
    archive = tmp_path / "archive" / "orders_raw"
    day12, day8 = (archive / f"{TODAY - timedelta(days=n)}.csv.gz" for n in (12, 8))
    assert sorted(p.name for p in archive.iterdir()) == sorted([day12.name, day8.name])
    records = _read_archive(day12)
    assert records[0] == HEADER
    # Ordered by time; every column as written (offsets: the rows' positions in the batch).
    assert _parsed(records[1:]) == [("b", "u2", "p1", Decimal("20.00"), "EUR", _at(12, 8), 1, 1),
                                    ("a", "u1", "p1", Decimal("10.50"), "EUR", _at(12, 23, 59), 1, 0)]
    assert [datetime.fromisoformat(r[8]) for r in records[1:]] == [ingested["b"], ingested["a"]]
    assert _parsed(_read_archive(day8)[1:]) == [("c", "u1", "p1", Decimal("30.25"), "EUR", _at(8, 0), 1, 2)]

    partitions = _partitions(archive_env)
    assert not {_name(12), _name(8)} & partitions
    assert {_name(7), _name(1), _name(0), _name(-3)} <= partitions  # kept, and made ahead
    with psycopg.connect(archive_env) as conn:
        assert conn.execute("SELECT to_regclass(%s), to_regclass(%s)", (_name(12), _name(8))).fetchone() == (None, None)
        assert [r[0] for r in conn.execute("SELECT order_id FROM orders_raw ORDER BY 1")] == ["d", "e", "f"]
        assert conn.execute("SELECT day, file, row_count, archived_at IS NOT NULL FROM orders_raw_archive "
                            "ORDER BY day").fetchall() == [
            (TODAY - timedelta(days=12), str(day12), 2, True), (TODAY - timedelta(days=8), str(day8), 1, True)]
    metadata = _metadata(result)
    assert metadata["archived_days"] == [
        {"day": str(TODAY - timedelta(days=12)), "rows": 2, "file": str(day12)},
        {"day": str(TODAY - timedelta(days=8)), "rows": 1, "file": str(day8)}]
    assert (metadata["archived_rows"], metadata["keeps_days"]) == (3, 7)
    assert metadata["partitions_ready_through"] == str(TODAY + timedelta(days=3))

    # The next run has nothing to do.
    again = orders_archive_job.execute_in_process(resources={"eventflow": EventFlowEndpoints()})
    assert _metadata(again)["archived_days"] == [] and _metadata(again)["archived_rows"] == 0


def test_a_run_finishes_the_days_an_interrupted_one_left(archive_env, tmp_path):
    """Retention unset (every day kept): the run still finishes the days already on their way."""
    _write(archive_env, [("x1", "1.00", "u1", _at(20, 1)), ("x2", "2.00", "u1", _at(20, 2)),
                         ("y1", "3.00", "u2", _at(21, 3)), ("t1", "4.00", "u3", _at(0, 0))])
    archive = tmp_path / "archive" / "orders_raw"
    archive.mkdir(parents=True)
    day20, day21 = (archive / f"{TODAY - timedelta(days=n)}.csv.gz" for n in (20, 21))
    with psycopg.connect(archive_env) as conn:
        # Day 21: claimed and detached, its export cut short (a .partial file, not a whole one).
        conn.execute("INSERT INTO orders_raw_archive (day, file) VALUES (%s, %s)", (TODAY - timedelta(days=21), str(day21)))
        conn.execute(f"ALTER TABLE orders_raw DETACH PARTITION {_name(21)}")
        (archive / (day21.name + ".partial")).write_bytes(b"\x1f\x8b half a file")
        # Day 20: detached and nothing recorded (by hand, or a crash before the claim was committed).
        conn.execute(f"ALTER TABLE orders_raw DETACH PARTITION {_name(20)}")

    result = orders_archive_job.execute_in_process(resources={"eventflow": EventFlowEndpoints()})

    assert result.success
    assert sorted(p.name for p in archive.iterdir()) == sorted([day20.name, day21.name])
    assert [r[0] for r in _read_archive(day20)] == ["order_id", "x1", "x2"]
    assert [r[0] for r in _read_archive(day21)] == ["order_id", "y1"]
    assert _metadata(result)["keeps_days"] == "all"
    with psycopg.connect(archive_env) as conn:
        assert conn.execute("SELECT to_regclass(%s), to_regclass(%s)", (_name(20), _name(21))).fetchone() == (None, None)
        assert conn.execute("SELECT order_id FROM orders_raw").fetchall() == [("t1",)]
        # Day 20 dropped by a run that stopped before recording it: the next run records it from its file.
        conn.execute("UPDATE orders_raw_archive SET row_count = NULL, archived_at = NULL WHERE day = %s",
                     (TODAY - timedelta(days=20),))
    again = orders_archive_job.execute_in_process(resources={"eventflow": EventFlowEndpoints()})
    assert _metadata(again)["archived_days"] == [{"day": str(TODAY - timedelta(days=20)), "rows": 2, "file": str(day20)}]
    assert [r[0] for r in _read_archive(day20)] == ["order_id", "x1", "x2"]


def test_a_bad_setting_fails_the_run_with_its_name_and_archives_nothing(archive_env, monkeypatch):
    _write(archive_env, [("a", "1.00", "u1", _at(40, 0))])
    monkeypatch.setenv("EVENTFLOW_RETENTION_ORDERS_DAYS", "30d")

    result = orders_archive_job.execute_in_process(resources={"eventflow": EventFlowEndpoints()}, raise_on_error=False)

    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert "EVENTFLOW_RETENTION_ORDERS_DAYS must be a whole number of days, at least 1; got '30d'" in \
        failure.step_failure_data.error.message
    assert _name(40) in _partitions(archive_env)


def test_the_schedule_runs_the_job_daily_and_is_on_by_default():
    assert (orders_archive_schedule.cron_schedule, orders_archive_schedule.execution_timezone) == ("37 0 * * *", "UTC")
    assert orders_archive_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    ticks = orders_archive_schedule.evaluate_tick(dg.build_schedule_context())
    assert [r.job_name or orders_archive_schedule.job_name for r in ticks.run_requests] == ["orders_archive_job"]
