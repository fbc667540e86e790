"""Write analytics results to PostgreSQL idempotently: replace a whole table, or one time range of it.

All replacements passed to :func:`replace` commit in ONE transaction: rows travel as CSV by COPY
into a temporary staging table shaped like the target, then ``DELETE`` of the replaced scope and
``INSERT ... SELECT`` from staging. ``DELETE`` rather than ``TRUNCATE``: under MVCC readers keep
seeing the old rows until the commit instead of waiting on TRUNCATE's exclusive lock. Running the
same replacement twice leaves the same rows (only ``computed_at`` moves).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
from psycopg import sql

from eventflow_assets.storage.postgres import arrow_to_csv, connect


@dataclass(frozen=True)
class Replacement:
    """``rows`` become the content of ``table`` where ``scope`` holds (SQL over the table's columns,
    with ``params``); every row must itself be in scope. The default scope is the whole table.
    A ``scope`` given as text is SQL written in the code, never built from input or settings."""

    table: str
    rows: pa.Table
    scope: str | sql.Composable = "TRUE"
    params: tuple = ()

    @classmethod
    def time_range(cls, table: str, rows: pa.Table, column: str, start: datetime, end: datetime,
                   extra: str = "TRUE", extra_params: tuple = ()) -> Replacement:
        """Replace rows with ``start <= column < end`` (and ``extra``): one partition of a time series."""
        scope = sql.SQL("{column} >= %s AND {column} < %s AND ({extra})").format(
            column=sql.Identifier(column), extra=sql.SQL(extra))
        return cls(table, rows, scope, (start, end, *extra_params))


class OutOfScope(ValueError):
    """A replacement carried rows outside the scope it replaces; nothing was written."""


def replace(postgres_url: str, replacements: list[Replacement]) -> dict[str, int]:
    """Apply all replacements in one transaction; returns rows inserted per table."""
    written: dict[str, int] = {}
    with connect(postgres_url) as conn, conn.transaction():
        for i, r in enumerate(replacements):
            staging, table = sql.Identifier(f"analytics_staging_{i}"), sql.Identifier(r.table)
            names = sql.SQL(", ").join(map(sql.Identifier, r.rows.column_names))
            scope = sql.SQL(r.scope) if isinstance(r.scope, str) else r.scope
            conn.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(
                staging, table))
            if r.rows.num_rows:
                with conn.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
                        staging, names)) as copy:
                    copy.write(arrow_to_csv(r.rows))
            outside = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE ({}) IS NOT TRUE").format(staging, scope),
                                   r.params).fetchone()[0]
            if outside:
                raise OutOfScope(f"{outside} of {r.rows.num_rows} rows for {r.table} are outside "
                                 f"the replaced scope {scope.as_string(conn)} {r.params}")
            conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(table, scope), r.params)
            inserted = conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                table, names, names, staging)).rowcount
            written[r.table] = written.get(r.table, 0) + inserted
    return written
