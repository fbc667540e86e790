"""Asset metadata: tables' column schemas (from the migrations). The analytics
tables' materialization metadata is computed by the Spark application (analytics/metadata.py)."""

from __future__ import annotations

import dagster as dg

from eventflow_assets.storage.columns import table_columns


def column_schema(table: str) -> dg.TableSchema:
    """``dagster/column_schema`` of a PostgreSQL table: its columns, types, nullability, CHECK and DEFAULT
    clauses and primary key as the migrations declare them (storage/columns.py)."""
    declared = table_columns(table)
    columns = [dg.TableColumn(c.name, c.type, description=c.description, constraints=dg.TableColumnConstraints(
        nullable=c.nullable, unique=c.unique, other=list(c.other))) for c in declared.columns]
    key = [f"PRIMARY KEY ({', '.join(declared.primary_key)})"] if declared.primary_key else []
    return dg.TableSchema(columns=columns, constraints=dg.TableConstraints(other=key))

