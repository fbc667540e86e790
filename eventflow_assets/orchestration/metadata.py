"""Asset metadata: tables' column schemas (from the migrations) and row counts. The analytics
tables' materialization metadata is computed by the Spark application (analytics/metadata.py)."""

from __future__ import annotations

import dagster as dg
import psycopg
from psycopg import sql

from eventflow_assets.storage.columns import table_columns
from eventflow_assets.storage.postgres import connect

def column_schema(table: str) -> dg.TableSchema:
    """``dagster/column_schema`` of a PostgreSQL table: its columns, types, nullability, CHECK and DEFAULT
    clauses and primary key as the migrations declare them (storage/columns.py)."""
    declared = table_columns(table)
    columns = [dg.TableColumn(c.name, c.type, description=c.description, constraints=dg.TableColumnConstraints(
        nullable=c.nullable, unique=c.unique, other=list(c.other))) for c in declared.columns]
    key = [f"PRIMARY KEY ({', '.join(declared.primary_key)})"] if declared.primary_key else []
    return dg.TableSchema(columns=columns, constraints=dg.TableConstraints(other=key))


def row_counts(postgres_url: str, tables: list[str]) -> dict[str, int]:
    """``count(*)`` of each table, all in one snapshot: the ``dagster/row_count`` of its latest event."""
    with connect(postgres_url, connect_timeout=5) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.execute("SET statement_timeout = '20s'")
        return {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
                for t in tables}

