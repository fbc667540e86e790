"""Retention on a real PostgreSQL: exactly the rows past each table's retention go, except the newest
progress and ledger row of every (query, checkpoint); a replay of a checkpoint's last batch is still
recognised after pruning; the settings come from EVENTFLOW_RETENTION_* with safe defaults."""

import psycopg
import pytest

from eventflow_assets.errors import EventFlowError
from eventflow_assets.processing.sinks import SINKS, ExactlyOnceSink
from eventflow_assets.storage.retention import Pruned, Retention, prune
from eventflow_assets.storage.schema import apply_schema
from eventflow_assets_tests.processing.batches import orders

DAY = 86400
# Ages in days, each at least half a day from any retention used below.
OLD_CHECKPOINT_AGES = [20, 18, 16, 14, 12]
CURRENT_CHECKPOINT_AGES = [10, 9, 8.5, 7.5, 6.5, 5, 3.5, 1, 0.5, 0.01]
REJECT_AGES = [40, 31, 29.5, 10, 0.1]


def _ledger_rows() -> dict[tuple[str, str, int], float]:
    """{(query, checkpoint id, batch id): age in days} for two queries, an old and a current checkpoint."""
    rows = {}
    for query in ("orders", "product-view"):
        for checkpoint, ages in (("ckpt-old-" + query, OLD_CHECKPOINT_AGES),
                                 ("ckpt-now-" + query, CURRENT_CHECKPOINT_AGES)):
            rows.update({(query, checkpoint, batch): age for batch, age in enumerate(ages)})
    return rows


def _kept(rows: dict[tuple[str, str, int], float], days: int) -> set[tuple[str, str, int]]:
    newest = {}
    for query, checkpoint, batch in rows:
        newest[(query, checkpoint)] = max(batch, newest.get((query, checkpoint), -1))
    return {key for key, age in rows.items() if age < days or key[2] == newest[key[:2]]}


def _insert(conn, rows, rejects) -> None:
    for (query, checkpoint, batch), age in rows.items():
        conn.execute("INSERT INTO stream_progress (query_name, checkpoint_id, batch_id, recorded_at, input_rows, "
                     "output_rows, late_rows, rejected_rows, duration_ms) "
                     "VALUES (%s, %s, %s, now() - make_interval(secs => %s), 1, 1, 0, 0, 10)",
                     (query, checkpoint, batch, age * DAY))
        conn.execute("INSERT INTO stream_batches (query_name, checkpoint_id, batch_id, row_count, committed_at) "
                     "VALUES (%s, %s, %s, 1, now() - make_interval(secs => %s))", (query, checkpoint, batch, age * DAY))
    for offset, age in enumerate(rejects):
        conn.execute("INSERT INTO rejected_events (topic, \"partition\", \"offset\", payload, payload_bytes, reason, "
                     "rejected_at) VALUES ('orders', 0, %s, 'x', 1, 'invalid JSON', "
                     "now() - make_interval(secs => %s))", (offset, age * DAY))


def _keys(conn, table: str) -> set[tuple[str, str, int]]:
    return set(conn.execute(f"SELECT query_name, checkpoint_id, batch_id FROM {table}").fetchall())


def test_prune_deletes_exactly_what_is_past_retention_in_bounded_statements(pg_url):
    apply_schema(pg_url)
    rows = _ledger_rows()
    with psycopg.connect(pg_url) as conn:
        _insert(conn, rows, REJECT_AGES)
    retention = Retention(progress_days=7, batches_days=3, rejected_days=30, delete_rows=2)

    pruned = prune(pg_url, retention)

    progress_kept, ledger_kept = _kept(rows, 7), _kept(rows, 3)
    rejects_kept = {offset for offset, age in enumerate(REJECT_AGES) if age < 30}
    # Worked by hand for one (query, checkpoint), as a check on _kept itself: the old checkpoint
    # keeps only its newest batch (4); the current one keeps ages < 7 (batches 4-9) and < 3 (7-9).
    assert {b for q, c, b in progress_kept if c == "ckpt-old-orders"} == {4}
    assert {b for q, c, b in progress_kept if c == "ckpt-now-orders"} == {4, 5, 6, 7, 8, 9}
    assert {b for q, c, b in ledger_kept if c == "ckpt-now-orders"} == {7, 8, 9}
    assert rejects_kept == {2, 3, 4}
    with psycopg.connect(pg_url) as conn:
        assert _keys(conn, "stream_progress") == progress_kept
        assert _keys(conn, "stream_batches") == ledger_kept
        assert {o for (o,) in conn.execute('SELECT "offset" FROM rejected_events')} == rejects_kept
    deleted = {"stream_progress": len(rows) - len(progress_kept), "stream_batches": len(rows) - len(ledger_kept),
               "rejected_events": len(REJECT_AGES) - len(rejects_kept)}
    assert deleted == {"stream_progress": 16, "stream_batches": 22, "rejected_events": 2}
    # At most 2 rows per statement: full statements until one deletes fewer than 2.
    assert pruned == {table: Pruned(n, n // 2 + 1) for table, n in deleted.items()}
    # Nothing left to delete: a second run deletes nothing, in one statement per table.
    assert prune(pg_url, retention) == {table: Pruned(0, 1) for table in deleted}


def test_a_checkpoints_last_batch_is_still_recognised_as_a_replay_after_pruning(pg_url):
    apply_schema(pg_url)
    sink = ExactlyOnceSink(pg_url, "orders", SINKS["orders"])
    batches = [orders(*[f"o{b}-{i}" for i in range(3)], first_offset=3 * b) for b in range(3)]
    for batch_id, batch in enumerate(batches):
        assert sink.write(batch, batch_id, "ckpt")["orders_raw"] == 3
    with psycopg.connect(pg_url) as conn:
        conn.execute("UPDATE stream_batches SET committed_at = now() - interval '30 days'")
    assert prune(pg_url, Retention(batches_days=7))["stream_batches"].rows == 2

    assert sink.write(batches[2], 2, "ckpt") is None  # Spark replaying its last batch: skipped
    assert sink.write(orders("o3-0", first_offset=9), 3, "ckpt")["orders_raw"] == 1
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT order_id) FROM orders_raw").fetchone() == (10, 10)
        assert conn.execute("SELECT batch_id FROM stream_batches ORDER BY 1").fetchall() == [(2,), (3,)]


def test_settings_come_from_the_environment_with_safe_defaults():
    assert Retention.from_env({}) == Retention(progress_days=7, batches_days=7, rejected_days=30, delete_rows=5000)
    env = {"EVENTFLOW_RETENTION_PROGRESS_DAYS": "2", "EVENTFLOW_RETENTION_BATCHES_DAYS": "3",
           "EVENTFLOW_RETENTION_REJECTED_DAYS": "90", "EVENTFLOW_RETENTION_DELETE_ROWS": "100",
           "EVENTFLOW_RETENTION_UNKNOWN": "1"}
    assert Retention.from_env(env) == Retention(progress_days=2, batches_days=3, rejected_days=90, delete_rows=100)
    assert Retention.from_env({"EVENTFLOW_RETENTION_PROGRESS_DAYS": ""}).progress_days == 7
    for bad in ("0", "-1", "1.5", "7d", "seven"):
        with pytest.raises(EventFlowError, match=f"EVENTFLOW_RETENTION_BATCHES_DAYS must be a whole number of days, "
                                                 f"at least 1; got '{bad}'"):
            Retention.from_env({"EVENTFLOW_RETENTION_BATCHES_DAYS": bad})
    with pytest.raises(EventFlowError, match="EVENTFLOW_RETENTION_DELETE_ROWS must be a whole number of rows"):
        Retention.from_env({"EVENTFLOW_RETENTION_DELETE_ROWS": "0"})
