"""The versioned schema against a real PostgreSQL: contract tables, idempotence, drift."""

import shutil
from decimal import Decimal

import psycopg
import pytest

from eventflow_assets.errors import EventFlowError
from eventflow_assets.ingestion.events import USD_RATES
from eventflow_assets.storage.schema import MIGRATIONS_DIR, apply_schema, schema_version

CONTRACT_COLUMNS = {
    "orders_raw": ["order_id", "user_id", "product_id", "price", "currency", "timestamp"],
    "revenue_by_currency_5min": ["window_start", "window_end", "currency", "total_revenue", "order_count",
                                 "avg_order_value"],
    "conversion_funnel_5min": ["window_start", "window_end", "user_id", "view_count", "order_count"],
    "rejected_events": ["topic", "partition", "offset", "payload", "reason"],
    "currency_rates": ["currency", "usd_rate"],
}
PRIMARY_KEYS = {
    "orders_raw": ["order_id", "timestamp"],  # partitioned by day of "timestamp" (docs/contracts.md)
    "revenue_by_currency_5min": ["window_start", "currency"],
    "conversion_funnel_5min": ["window_start", "user_id"],
    "rejected_events": ["topic", "partition", "offset"],
    "currency_rates": ["currency"],
    "stream_batches": ["query_name", "checkpoint_id", "batch_id"],
}


def _snapshot(url):
    with psycopg.connect(url) as conn:
        cols = conn.execute("""SELECT table_name, column_name, data_type FROM information_schema.columns
                               WHERE table_schema = 'public' ORDER BY 1, ordinal_position""").fetchall()
        idx = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname='public' ORDER BY 1").fetchall()
        rates = conn.execute("SELECT currency, usd_rate FROM currency_rates ORDER BY 1").fetchall()
        migrations = conn.execute("SELECT version, name, checksum FROM schema_migrations ORDER BY 1").fetchall()
    return cols, idx, rates, migrations


def _primary_key(conn, table):
    return [r[0] for r in conn.execute("""
        SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
        WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)""", (table,))]


LATEST = max(int(p.name[:4]) for p in MIGRATIONS_DIR.glob("*.sql"))


def test_contract_tables_columns_and_keys(pg_url):
    assert apply_schema(pg_url) == list(range(1, LATEST + 1))
    with psycopg.connect(pg_url) as conn:
        for table, columns in CONTRACT_COLUMNS.items():
            have = [r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name=%s ORDER BY ordinal_position",
                (table,))]
            assert set(columns) <= set(have), (table, have)
        for table, key in PRIMARY_KEYS.items():
            assert _primary_key(conn, table) == key, table
        price_type = conn.execute("""SELECT numeric_precision, numeric_scale FROM information_schema.columns
                                     WHERE table_name='orders_raw' AND column_name='price'""").fetchone()
        assert price_type == (12, 2)
        ts_index = conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename='orders_raw' "
                                "AND indexname='orders_raw_timestamp_idx'").fetchone()
        assert ts_index is not None and '("timestamp")' in ts_index[0]


def test_currency_rates_match_the_code(pg_url):
    apply_schema(pg_url)
    with psycopg.connect(pg_url) as conn:
        rates = dict(conn.execute("SELECT currency, usd_rate FROM currency_rates").fetchall())
    assert rates == {c: Decimal(str(r)).quantize(Decimal("0.000001")) for c, r in USD_RATES.items()}


def test_applying_twice_is_a_no_op(pg_url):
    apply_schema(pg_url)
    before = _snapshot(pg_url)
    assert apply_schema(pg_url) == []
    assert _snapshot(pg_url) == before
    assert schema_version(pg_url) == LATEST


def test_new_migration_applies_alone_and_edited_migration_is_refused(pg_url, tmp_path):
    shutil.copytree(MIGRATIONS_DIR, tmp_path / "m")
    assert apply_schema(pg_url, tmp_path / "m") == list(range(1, LATEST + 1))
    (tmp_path / "m" / "9001_extra.sql").write_text("CREATE TABLE extra (id int);")
    assert apply_schema(pg_url, tmp_path / "m") == [9001]
    assert schema_version(pg_url) == 9001
    with (tmp_path / "m" / "0001_core.sql").open("a") as fh:
        fh.write("\n-- edited\n")
    with pytest.raises(EventFlowError, match="migration 0001_core.sql changed after it was applied"):
        apply_schema(pg_url, tmp_path / "m")


def test_failed_migration_leaves_nothing_half_applied(pg_url, tmp_path):
    shutil.copytree(MIGRATIONS_DIR, tmp_path / "m")
    (tmp_path / "m" / "9002_broken.sql").write_text("CREATE TABLE half (id int); SELECT no_such_function();")
    with pytest.raises(psycopg.Error):
        apply_schema(pg_url, tmp_path / "m")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('half')").fetchone()[0] is None
    assert schema_version(pg_url) == LATEST


def test_bad_url_and_unreachable_server_are_clear_errors():
    from eventflow_assets.local.processes import free_port

    with pytest.raises(EventFlowError, match="must be a libpq URI"):
        apply_schema("mysql://user:secret@localhost/db")
    port = free_port()
    with pytest.raises(EventFlowError, match=rf"cannot connect to PostgreSQL at postgresql://u:\*\*\*@127.0.0.1:{port}/db") as err:
        apply_schema(f"postgresql://u:hunter2@127.0.0.1:{port}/db")
    assert "hunter2" not in str(err.value)
