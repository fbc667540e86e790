"""Exactly-once PostgreSQL sinks for ``foreachBatch``.

Each micro-batch is written in one transaction that also inserts (query, batch id) into
``stream_batches``. A batch Spark replays after a failure finds its row there and writes
nothing; a batch that failed mid-way left nothing, because its transaction rolled back.
Rows travel in bulk: the batch is collected as Arrow, written as CSV into a temporary
staging table with COPY, then merged by one ``INSERT ... ON CONFLICT`` from ``sql/sinks/``.
Transient database faults (a restart, a failover, a deadlock) are retried around that whole
transaction (``storage/retry.py``), which the ledger makes safe.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from pyspark.sql import DataFrame

from eventflow_assets.storage.postgres import arrow_to_csv, connect, read_sql
from eventflow_assets.storage.retry import with_retries

log = logging.getLogger("eventflow.sinks")


@dataclass(frozen=True)
class SinkSpec:
    """Where a query's rows go: staging columns with their PostgreSQL types, and the merge SQL."""

    table: str
    columns: tuple[tuple[str, str], ...]

    @property
    def merge_sql(self) -> str:
        return read_sql(f"sinks/{self.table}.sql")

    @property
    def staging_ddl(self) -> str:
        cols = ", ".join(f'"{name}" {pg_type}' for name, pg_type in self.columns)
        return f"CREATE TEMP TABLE staging ({cols}) ON COMMIT DROP"


ORDERS_RAW = SinkSpec("orders_raw", (
    ("order_id", "text"), ("user_id", "text"), ("product_id", "text"), ("price", "numeric(12,2)"),
    ("currency", "text"), ("timestamp", "timestamptz"), ("kafka_partition", "integer"), ("kafka_offset", "bigint")))
REVENUE = SinkSpec("revenue_by_currency_5min", (
    ("window_start", "timestamptz"), ("window_end", "timestamptz"), ("currency", "text"),
    ("total_revenue", "numeric(16,2)"), ("order_count", "bigint"), ("avg_order_value", "numeric(16,2)")))
FUNNEL = SinkSpec("conversion_funnel_5min", (
    ("window_start", "timestamptz"), ("window_end", "timestamptz"), ("user_id", "text"),
    ("view_count", "bigint"), ("order_count", "bigint")))
REJECTED = SinkSpec("rejected_events", (
    ("topic", "text"), ("partition", "integer"), ("offset", "bigint"), ("kafka_timestamp", "timestamptz"),
    ("record_key", "text"), ("payload", "text"), ("payload_bytes", "integer"), ("reason", "text")))


def checkpoint_id(checkpoint_dir: Path) -> str:
    """The query id Spark keeps in a checkpoint's ``metadata`` file (new checkpoint, new id)."""
    with open(checkpoint_dir / "metadata") as fh:
        return json.loads(fh.readline())["id"]


class ExactlyOnceSink:
    """``df.writeStream.foreachBatch(ExactlyOnceSink(url, "orders_raw", ORDERS_RAW, checkpoint))``.

    The ledger key is (query, checkpoint's query id, batch id): batch ids restart at 0 in a
    new checkpoint, and must not collide with the batches an older one committed.
    """

    def __init__(self, postgres_url: str, query_name: str, spec: SinkSpec, checkpoint_dir: Path | None = None):
        self.url = postgres_url
        self.query_name = query_name
        self.spec = spec
        self.checkpoint_dir = checkpoint_dir
        self._checkpoint_id: str | None = None
        self._merge_sql = spec.merge_sql

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        if self._checkpoint_id is None:
            self._checkpoint_id = checkpoint_id(self.checkpoint_dir) if self.checkpoint_dir else ""
        table = batch.select(*[name for name, _ in self.spec.columns]).toArrow()
        written = self.commit(table, batch_id, self._checkpoint_id)
        log.info("%s batch %d: %s rows in %.2fs", self.query_name, batch_id,
                 "replayed, skipped" if written is None else written, time.monotonic() - started)

    def commit(self, table: pa.Table, batch_id: int, checkpoint: str = "", retry_for_s: float | None = None) -> int | None:
        """:meth:`write`, retried through transient database faults (then one clear error)."""
        return with_retries(f"{self.query_name} batch {batch_id}", lambda: self.write(table, batch_id, checkpoint),
                            retry_for_s)

    def write(self, table: pa.Table, batch_id: int, checkpoint: str = "") -> int | None:
        """One attempt: rows merged now, or None when this batch was already committed (a replay)."""
        key = (self.query_name, checkpoint, batch_id)
        with connect(self.url) as conn, conn.transaction():
            claimed = conn.execute(
                "INSERT INTO stream_batches (query_name, checkpoint_id, batch_id, row_count) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING RETURNING 1", (*key, table.num_rows)).fetchone()
            if claimed is None:
                return None
            if table.num_rows == 0:
                return 0
            conn.execute(self.spec.staging_ddl)
            names = ", ".join(f'"{name}"' for name, _ in self.spec.columns)
            with conn.cursor().copy(f"COPY staging ({names}) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(arrow_to_csv(table))
            merged = conn.execute(self._merge_sql).rowcount
            conn.execute("UPDATE stream_batches SET row_count = %s "
                         "WHERE query_name = %s AND checkpoint_id = %s AND batch_id = %s", (merged, *key))
            return merged
