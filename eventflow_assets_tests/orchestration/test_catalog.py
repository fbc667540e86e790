"""The catalog: every table asset's column schema is what PostgreSQL holds after the migrations (read
from pg_catalog, not from the parser that derives it), every asset has the owner and its layer's tag."""

from __future__ import annotations

import dagster as dg
import psycopg
import pytest

from eventflow_assets.definitions import defs
from eventflow_assets.errors import EventFlowError
from eventflow_assets.storage.columns import declared_tables
from eventflow_assets.storage.schema import apply_schema

_COLUMNS = """
    SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND a.attnum > 0
      AND NOT a.attisdropped AND c.relname <> 'schema_migrations'
    ORDER BY c.relname, a.attnum"""
_KEYS = """
    SELECT c.relname, array_agg(a.attname ORDER BY k.ord)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
    CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
    WHERE i.indisprimary AND c.relnamespace = 'public'::regnamespace AND NOT c.relispartition
      AND c.relname <> 'schema_migrations'
    GROUP BY c.relname"""


def database_tables(url: str) -> dict[str, tuple[list[tuple[str, str, bool]], tuple[str, ...]]]:
    """{table: ([(column, type, nullable)] in column order, primary key)} as PostgreSQL reports them."""
    with psycopg.connect(url) as conn:
        tables: dict = {}
        for table, column, type_, nullable in conn.execute(_COLUMNS):
            tables.setdefault(table, ([], ()))[0].append((column, type_, nullable))
        for table, key in conn.execute(_KEYS):
            tables[table] = (tables[table][0], tuple(key))
    return tables


def test_declared_columns_are_what_the_migrations_leave_in_postgres(pg_url):
    apply_schema(pg_url)
    declared = {t.name: ([(c.name, c.type, c.nullable) for c in t.columns], t.primary_key)
                for t in declared_tables().values()}
    assert declared == database_tables(pg_url)


def test_alter_table_forms_replayed_as_postgres_applies_them(pg_url, tmp_path):
    """Forms the project's migrations do not use yet, each checked against PostgreSQL itself."""
    (tmp_path / "0001_a.sql").write_text("""
        CREATE TABLE IF NOT EXISTS t (
            id     int8 PRIMARY KEY,
            "Name" varchar(20) NOT NULL,
            note   text DEFAULT '--', -- free text
            gone   boolean DEFAULT true,
            amount decimal(10, 3) CHECK (amount >= 0)
        );
        CREATE TABLE u (a text, b int, c timestamptz, CONSTRAINT u_pk PRIMARY KEY (b, a));
        CREATE TABLE dropped (x int);
        CREATE INDEX t_note_idx ON t (note);
        INSERT INTO t (id, "Name", note) VALUES (1, 'a; b', '-- not a comment');
    """)
    (tmp_path / "0002_b.sql").write_text("""
        ALTER TABLE t DROP COLUMN gone, ADD COLUMN IF NOT EXISTS added float8 NOT NULL DEFAULT 0;
        ALTER TABLE IF EXISTS t RENAME COLUMN note TO remark;
        ALTER TABLE t ALTER COLUMN amount TYPE numeric(12, 2), ALTER COLUMN remark SET NOT NULL;
        ALTER TABLE u ALTER c DROP NOT NULL, ALTER COLUMN a SET DEFAULT 'x';
        ALTER TABLE u DROP CONSTRAINT u_pk;
        ALTER TABLE u ADD PRIMARY KEY (a);
        ALTER TABLE u RENAME TO v;
        DROP TABLE IF EXISTS dropped;
    """)
    apply_schema(pg_url, tmp_path)
    declared = {t.name: ([(c.name, c.type, c.nullable) for c in t.columns], t.primary_key)
                for t in declared_tables(tmp_path).values()}
    assert declared == database_tables(pg_url)
    t = declared_tables(tmp_path)["t"]
    assert t.column("added").other == ("DEFAULT 0",)
    assert (t.column("remark").description, t.column("remark").other) == ("free text", ("DEFAULT '--'",))


@pytest.mark.parametrize("form", ["INHERIT p", "OF some_type"])
def test_an_alter_table_form_that_may_change_columns_and_is_not_modelled_is_an_error(tmp_path, form):
    """INHERIT and OF add columns from elsewhere: the model cannot follow them, so it refuses."""
    (tmp_path / "0001_a.sql").write_text(f"CREATE TABLE p (z int);\nCREATE TABLE t (a int);\nALTER TABLE t {form};\n")
    with pytest.raises(EventFlowError) as raised:
        declared_tables(tmp_path)
    assert str(raised.value) == f"storage/columns.py does not know ALTER TABLE t {form}"


def test_every_table_asset_carries_its_columns_and_every_asset_its_owner_and_layer(pg_url):
    apply_schema(pg_url)
    in_database = database_tables(pg_url)
    graph = defs.get_repository_def().asset_graph
    tables = 0
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners == ["team:data-platform"], key
        assert node.tags["layer"] == node.group_name, key
        if key.path[0] != "postgres":
            continue
        tables += 1
        table = key.path[-1]
        assert node.metadata["dagster/table_name"] == table
        schema = node.metadata["dagster/column_schema"]
        columns, primary_key = in_database[table]
        assert [(c.name, c.type, c.constraints.nullable) for c in schema.columns] == columns, table
        assert schema.constraints.other == [f"PRIMARY KEY ({', '.join(primary_key)})"], table
    assert tables == 13  # 4 sink tables, currency_rates, 8 analytics tables
    # What a reader sees on a column: its CHECK and DEFAULT clauses and its SQL comment.
    raw = graph.get(dg.AssetKey(["postgres", "orders_raw"]))
    price = next(c for c in raw.metadata["dagster/column_schema"].columns if c.name == "price")
    assert price.constraints.other == ["CHECK (price > 0)"]
    ingested = next(c for c in raw.metadata["dagster/column_schema"].columns if c.name == "ingested_at")
    assert ingested.description == 'When the row became visible: end-to-end latency is ingested_at - "timestamp".'
    assert ingested.constraints.other == ["DEFAULT clock_timestamp()"]
