"""Transient PostgreSQL faults under the exactly-once sink, on real servers: connections killed
mid-transaction and a restart are absorbed with nothing lost or doubled; an outage longer than
the bound is one clear error."""

import threading
import time

import psycopg
import pyarrow as pa
import pytest

from eventflow_assets.processing.sinks import SINKS, ExactlyOnceSink
from eventflow_assets.storage.retry import PostgresUnavailable, is_transient
from eventflow_assets.storage.schema import apply_schema
from eventflow_assets_tests.processing.batches import orders


def _orders(first: int, n: int) -> pa.Table:
    return orders(*[f"o{i:05d}" for i in range(first, first + n)], price="10.00", first_offset=first)


def _written(result):
    return None if result is None else result["orders_raw"]


def test_connections_killed_mid_transaction_lose_and_double_nothing(pg_url):
    """Each of the first five batches is killed inside its transaction, after the ledger claim and
    the COPY, while it waits for a lock on orders_raw; the retry commits it, once."""
    apply_schema(pg_url)
    sink = ExactlyOnceSink(pg_url, "orders", SINKS["orders"])
    killed = []
    results = {}

    def writes():
        results.update({b: _written(sink.commit(_orders(100 * b, 100), batch_id=b, retry_for_s=60))
                        for b in range(8)})

    with psycopg.connect(pg_url, autocommit=True) as admin:
        for _ in range(5):
            with admin.transaction():
                admin.execute("LOCK TABLE orders_raw IN EXCLUSIVE MODE")
                if not killed:
                    writer = threading.Thread(target=writes)
                    writer.start()
                deadline = time.monotonic() + 30
                waiting = []
                while not waiting and time.monotonic() < deadline:
                    admin.execute("SELECT pg_stat_clear_snapshot()")  # else the transaction sees one snapshot
                    waiting = admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                            "AND wait_event_type = 'Lock'").fetchall()
                    time.sleep(0.01)
                assert waiting, "the writer never waited for the lock"
                killed += admin.execute("SELECT pg_terminate_backend(%s)", waiting[0]).fetchall()
    writer.join(120)
    assert len(killed) == 5
    assert results == {b: 100 for b in range(8)}
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT order_id) FROM orders_raw").fetchone() == (800, 800)
        assert conn.execute("SELECT batch_id, table_rows->>'orders_raw' FROM stream_batches ORDER BY 1").fetchall() == \
            [(b, "100") for b in range(8)]


def test_a_database_restart_is_waited_out(own_postgres):
    url = own_postgres.url("eventflow")
    apply_schema(url)
    sink = ExactlyOnceSink(url, "orders", SINKS["orders"])
    assert _written(sink.commit(_orders(0, 50), batch_id=0)) == 50
    own_postgres.stop()
    result = {}
    writer = threading.Thread(target=lambda: result.update(rows=_written(sink.commit(_orders(50, 50), batch_id=1))))
    writer.start()
    time.sleep(3.0)
    # Restarted from this thread: a child's parent-death signal follows the thread that forked it.
    own_postgres.start()
    writer.join(60)
    assert result == {"rows": 50}  # waited for the server, then committed once
    assert sink.commit(_orders(50, 50), batch_id=1) is None  # Spark replaying the batch: a no-op
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM orders_raw").fetchone()[0] == 100


def test_an_outage_beyond_the_bound_is_one_clear_error(own_postgres):
    url = own_postgres.url("eventflow")
    apply_schema(url)
    own_postgres.stop()
    sink = ExactlyOnceSink(url, "orders", SINKS["orders"])
    with pytest.raises(PostgresUnavailable) as failure:
        sink.commit(_orders(0, 1), batch_id=0, retry_for_s=2)
    message = str(failure.value)
    assert message.startswith("orders batch 0: PostgreSQL still failing after 2s of retries: "
                              f"cannot connect to PostgreSQL at postgresql://postgres:***@127.0.0.1:{own_postgres.port}/")
    assert "\n" not in message and own_postgres.password_file.read_text().strip() not in message


def test_only_transient_faults_are_retried():
    assert is_transient(psycopg.errors.SerializationFailure())
    assert is_transient(psycopg.errors.DeadlockDetected())
    assert is_transient(psycopg.errors.AdminShutdown())
    assert not is_transient(psycopg.errors.UniqueViolation())
    assert not is_transient(psycopg.errors.NumericValueOutOfRange())
    assert not is_transient(ValueError("not a database error"))
