"""Retention for the tables that grow with every micro-batch, whatever the traffic: ``stream_progress``
(one row per query and batch, ~26,000 a day at the 10 s trigger), the exactly-once ledger
``stream_batches`` (the same), and ``rejected_events``.

Rows older than each table's setting are deleted in statements of at most ``delete_rows`` rows,
each its own transaction, so a large backlog never holds locks or a snapshot for long. The SQL is
in ``sql/retention/``; it always keeps the newest progress and ledger row of each (query,
checkpoint), which is what a replay and ``eventflow status`` need. Run hourly by Dagster's
``retention_schedule`` (``orchestration/schedules.py``; its op in ``orchestration/ops/maintenance.py``). ``orders_raw`` keeps its days for
``EVENTFLOW_RETENTION_ORDERS_DAYS`` and is archived by whole days (``storage/partitions.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from eventflow_assets.errors import EventFlowError
from eventflow_assets.settings import Settings
from eventflow_assets.storage.postgres import connect, read_sql
from eventflow_assets.storage.tables import ORDERS_RAW, REJECTED
from eventflow_assets.storage.tables import STREAM_BATCHES as LEDGER
from eventflow_assets.storage.tables import STREAM_PROGRESS as PROGRESS

# (setting's field, its environment variable, the table it prunes: None for the statement size and for
# orders_raw's days)
_VARIABLES = (
    ("progress_days", "EVENTFLOW_RETENTION_PROGRESS_DAYS", PROGRESS),
    ("batches_days", "EVENTFLOW_RETENTION_BATCHES_DAYS", LEDGER),
    ("rejected_days", "EVENTFLOW_RETENTION_REJECTED_DAYS", REJECTED),
    ("delete_rows", "EVENTFLOW_RETENTION_DELETE_ROWS", None),
    # orders_raw is archived by whole days (storage/partitions.py), not pruned here.
    ("orders_days", "EVENTFLOW_RETENTION_ORDERS_DAYS", None),
)
ARCHIVE_DIR_VAR = "EVENTFLOW_ARCHIVE_DIR"


@dataclass(frozen=True)
class Retention:
    """Days each table keeps, and rows per DELETE statement.

    Defaults: a week of per-batch history (the dashboard reads 30 minutes, the checks an hour);
    rejects as long as the longest topic retention (``orders``, 30 days), so a rejected record is
    kept at least as long as Kafka keeps the original. ``orders_days`` (None: every day is kept):
    the UTC days of ``orders_raw`` kept besides today; older days are archived to files.
    """

    progress_days: int = 7
    batches_days: int = 7
    rejected_days: int = 30
    delete_rows: int = 5000
    orders_days: int | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Retention:
        env = os.environ if environ is None else environ
        values = {}
        for name, variable, _ in _VARIABLES:
            raw = (env.get(variable) or "").strip()
            if not raw:
                continue
            if not raw.isdigit() or int(raw) < 1:
                unit = "rows" if name == "delete_rows" else "days"
                raise EventFlowError(f"{variable} must be a whole number of {unit}, at least 1; got {raw!r}")
            values[name] = int(raw)
        return cls(**values)

    def days(self) -> dict[str, int]:
        """{table: days it keeps} of the tables pruned row by row."""
        return {table: getattr(self, name) for name, _, table in _VARIABLES if table is not None}


def archive_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where orders_raw's archived days go: ``$EVENTFLOW_ARCHIVE_DIR/orders_raw``, by default
    ``$EVENTFLOW_HOME/archive/orders_raw``."""
    env = os.environ if environ is None else environ
    root = (env.get(ARCHIVE_DIR_VAR) or "").strip()
    return (Path(root).expanduser().absolute() if root else Settings.from_env(env).home / "archive") / ORDERS_RAW


@dataclass(frozen=True)
class Pruned:
    rows: int        # rows deleted
    statements: int  # DELETE statements run (each at most delete_rows rows)


def prune(postgres_url: str, retention: Retention) -> dict[str, Pruned]:
    """Delete what each table no longer keeps; {table: what was deleted}."""
    result = {}
    with connect(postgres_url, autocommit=True) as conn:
        for table, days in retention.days().items():
            sql = read_sql(f"retention/{table}.sql")
            rows = statements = 0
            while True:
                deleted = conn.execute(sql, {"days": days, "limit": retention.delete_rows}).rowcount
                rows, statements = rows + deleted, statements + 1
                if deleted < retention.delete_rows:
                    break
            result[table] = Pruned(rows, statements)
    return result
