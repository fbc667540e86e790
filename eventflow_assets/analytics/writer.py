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

from eventflow_assets.storage.postgres import arrow_to_csv, connect


@dataclass(frozen=True)
class Replacement:
    """``rows`` become the content of ``table`` where ``scope`` holds (SQL over the table's columns,
    with ``params``); every row must itself be in scope. The default scope is the whole table."""

    table: str
    rows: pa.Table
    scope: str = "TRUE"
    params: tuple = ()

    @classmethod
    def time_range(cls, table: str, rows: pa.Table, column: str, start: datetime, end: datetime,
                   extra: str = "TRUE", extra_params: tuple = ()) -> Replacement:
        """Replace rows with ``start <= column < end`` (and ``extra``): one partition of a time series."""
        return cls(table, rows, f'"{column}" >= %s AND "{column}" < %s AND ({extra})',
                   (start, end, *extra_params))


class OutOfScope(ValueError):
    """A replacement carried rows outside the scope it replaces; nothing was written."""


def replace(postgres_url: str, replacements: list[Replacement]) -> dict[str, int]:
    """Apply all replacements in one transaction; returns rows inserted per table."""
    written: dict[str, int] = {}
    with connect(postgres_url) as conn, conn.transaction():
        for i, r in enumerate(replacements):
            staging = f"analytics_staging_{i}"
            names = ", ".join(f'"{name}"' for name in r.rows.column_names)
            conn.execute(f"CREATE TEMP TABLE {staging} (LIKE {r.table} INCLUDING DEFAULTS) ON COMMIT DROP")
            if r.rows.num_rows:
                with conn.cursor().copy(f"COPY {staging} ({names}) FROM STDIN WITH (FORMAT csv)") as copy:
                    copy.write(arrow_to_csv(r.rows))
            outside = conn.execute(f"SELECT count(*) FROM {staging} WHERE ({r.scope}) IS NOT TRUE",
                                   r.params).fetchone()[0]
            if outside:
                raise OutOfScope(f"{outside} of {r.rows.num_rows} rows for {r.table} are outside "
                                 f"the replaced scope {r.scope} {r.params}")
            conn.execute(f"DELETE FROM {r.table} WHERE {r.scope}", r.params)
            inserted = conn.execute(f"INSERT INTO {r.table} ({names}) SELECT {names} FROM {staging}").rowcount
            written[r.table] = written.get(r.table, 0) + inserted
    return written
