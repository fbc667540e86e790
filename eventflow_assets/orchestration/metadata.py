"""Materialization metadata from Arrow results: a preview table for the UI and plain numbers to plot."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

PREVIEW_ROWS = 20
_TYPES = {"string": "string", "int64": "int", "bool": "bool"}


def _cell(value):
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value


def _type(arrow_type: pa.DataType) -> str:
    if pa.types.is_decimal(arrow_type) or pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    return _TYPES.get(str(arrow_type), "string")


def preview(rows: pa.Table, sort_by: list[tuple[str, str]], limit: int = PREVIEW_ROWS) -> dg.TableMetadataValue:
    """The first ``limit`` rows of ``rows`` in ``sort_by`` order (pyarrow sort keys)."""
    head = rows.sort_by(sort_by).slice(0, limit) if rows.num_rows else rows
    schema = dg.TableSchema(columns=[dg.TableColumn(f.name, _type(f.type)) for f in rows.schema])
    records = [dg.TableRecord({k: _cell(v) for k, v in row.items()}) for row in head.to_pylist()]
    return dg.MetadataValue.table(records, schema=schema)


def total(rows: pa.Table, column: str) -> float:
    """Sum of a column as a float for plots (0.0 when empty or all NULL)."""
    value = pc.sum(rows[column]).as_py() if rows.num_rows else None
    return float(value) if value is not None else 0.0


def count(rows: pa.Table, column: str) -> int:
    value = pc.sum(rows[column]).as_py() if rows.num_rows else None
    return int(value or 0)
