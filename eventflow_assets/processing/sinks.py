"""Exactly-once PostgreSQL sinks for ``foreachBatch``: one per streaming query (= topic).

Each micro-batch is written in one transaction that also inserts (query, batch id) into
``stream_batches``. A batch Spark replays after a failure finds its row there and writes
nothing; a batch that failed mid-way left nothing, because its transaction rolled back.
Rows travel in bulk: the batch is collected once as Arrow, split into valid events and
rejects, each copied (COPY, CSV) into a temporary staging table and merged by the SQL in
``sql/sinks/``, which returns how many rows each table received. Transient database faults (a
restart, a failover, a deadlock) are retried around that whole transaction
(``storage/retry.py``), which the ledger makes safe.

Each batch also checks that its topic is still the one the checkpoint started reading (Kafka's
topic id, kept in ``stream_topics``). Spark's connector notices a topic deleted and recreated
under a checkpoint only when the new topic's offsets are *below* the checkpoint's; once the new
topic holds more records, it reads on from the old offsets and silently skips the new topic's
first records. The id, read after the batch's records, tells the two apart.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql
from psycopg.types.json import Jsonb
from pyspark.sql import DataFrame

from eventflow_assets.errors import EventFlowError
from eventflow_assets.ingestion.events import ORDERS, PRODUCT_VIEW, USER_EVENTS
from eventflow_assets.ingestion.offsets import TopicMissing, topic_ids
from eventflow_assets.storage.columns import table_columns
from eventflow_assets.storage.postgres import arrow_to_csv, connect, read_sql
from eventflow_assets.storage.retry import with_retries
from eventflow_assets.storage.tables import FUNNEL, ORDERS_RAW, REJECTED, REVENUE

log = logging.getLogger("eventflow.sinks")


@dataclass(frozen=True)
class Merge:
    """A staging table (columns with their PostgreSQL types) and the SQL that merges it; ``before``
    names SQL run on the staged rows just before (the orders' day partitions)."""

    sql_file: str
    columns: tuple[tuple[str, str], ...]
    before: str | None = None

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def sql(self) -> str:
        return read_sql(f"sinks/{self.sql_file}.sql")

    @property
    def staging_ddl(self) -> sql.Composed:
        """The staging table's DDL; the types are the migrations' (see :func:`typed_as`), the names
        quoted as identifiers."""
        return sql.SQL("CREATE TEMP TABLE staging ({})").format(
            sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in self.columns))


def typed_as(table: str, *columns: str, **renamed: str) -> tuple[tuple[str, str], ...]:
    """Staging columns with the types ``table``'s columns have in the migrations (storage/columns.py):
    each of ``columns`` under its own name, each ``staging name=table column`` of ``renamed``."""
    types = {c.name: c.type for c in table_columns(table).columns}
    return tuple((name, types[name]) for name in columns) + tuple((name, types[of]) for name, of in renamed.items())


ORDER_ROWS = Merge(ORDERS, (
    *typed_as(ORDERS_RAW, "order_id", "user_id", "product_id", "price", "currency", "timestamp"),
    *typed_as(REVENUE, "window_start", "window_end"),
    *typed_as(ORDERS_RAW, partition="kafka_partition", offset="kafka_offset")), before="orders_days")
VIEW_COUNTS = Merge(PRODUCT_VIEW, typed_as(FUNNEL, "window_start", "window_end", "user_id", "view_count"))
REJECTS = Merge(REJECTED, typed_as(REJECTED, "topic", "partition", "offset", "kafka_timestamp", "record_key",
                                   "payload", "payload_bytes", "reason"))


VIEW_KEYS = tuple(VIEW_COUNTS.names[:-1])  # (window_start, window_end, user_id): what a view batch carries


def count_views(views: pa.Table) -> pa.Table:
    """Views per (window, user) of one batch: the funnel needs only these counts."""
    counted = views.group_by(list(VIEW_KEYS)).aggregate([("user_id", "count")])
    return counted.select([*VIEW_KEYS, "user_id_count"]).rename_columns(VIEW_COUNTS.names)


@dataclass(frozen=True)
class SinkSpec:
    """What a query's batch carries for its valid events, how they are staged and merged.

    ``events`` is None for a topic whose valid events feed no table (only its rejects are kept).
    """

    events: Merge | None
    event_columns: tuple[str, ...] = ()
    prepare: Callable[[pa.Table], pa.Table] | None = None

    @property
    def columns(self) -> list[str]:
        """The batch's columns to collect, each once."""
        return list(dict.fromkeys([*self.event_columns, *REJECTS.names]))


SINKS = {
    ORDERS: SinkSpec(ORDER_ROWS, tuple(ORDER_ROWS.names)),
    PRODUCT_VIEW: SinkSpec(VIEW_COUNTS, VIEW_KEYS, count_views),
    USER_EVENTS: SinkSpec(None),
}


# The local property Spark's stream execution sets on the thread that runs the query's batches.
QUERY_ID_PROPERTY = "sql.streaming.queryId"


def checkpoint_id(batch: DataFrame) -> str:
    """The id of the query running ``batch``: the id Spark keeps in the query's checkpoint (new
    checkpoint, new id), read from the query rather than from the checkpoint's files, so the
    checkpoint may be anywhere Spark can write. Empty outside a streaming query."""
    return batch.sparkSession.sparkContext.getLocalProperty(QUERY_ID_PROPERTY) or ""


# The line each batch logs: the driver-side split of its time (bench/scaling.py reads it back).
BATCH_LINE = "%s batch %d: %s; %d rows (%d bytes) computed and collected in %.3fs, committed in %.3fs"
REPLAYED = "replayed, skipped"
_BATCH_LINE = re.compile(r"(?P<query>\S+) batch (?P<batch_id>\d+): (?P<written>.*); (?P<rows>\d+) rows "
                         r"\((?P<bytes>\d+) bytes\) computed and collected in (?P<collect_s>[\d.]+)s, "
                         r"committed in (?P<commit_s>[\d.]+)s$")


@dataclass(frozen=True)
class BatchTimes:
    """One batch's figures from its :data:`BATCH_LINE`: what the driver collected (rows, Arrow bytes),
    the seconds to compute and collect it, and the seconds of its PostgreSQL transaction."""

    query: str
    batch_id: int
    rows: int
    bytes: int
    collect_s: float
    commit_s: float
    replayed: bool


def parse_batch_line(line: str) -> BatchTimes | None:
    """The figures of a log line ending in a :data:`BATCH_LINE`; None for any other line."""
    m = _BATCH_LINE.search(line.rstrip("\n"))
    if m is None:
        return None
    return BatchTimes(m["query"], int(m["batch_id"]), int(m["rows"]), int(m["bytes"]), float(m["collect_s"]),
                      float(m["commit_s"]), m["written"] == REPLAYED)


_DATA_LOSS_HINT = ("Nothing of this batch was written. Start over with a new checkpoint and emptied tables "
                   "(`eventflow reset`), or run with --no-fail-on-data-loss to accept the loss and go on.")


class TopicRecreated(EventFlowError):
    """The topic a query reads is not the one its checkpoint started on (failOnDataLoss)."""


class ExactlyOnceSink:
    """``df.writeStream.foreachBatch(ExactlyOnceSink(url, "orders", SINKS["orders"], kafka))``.

    The ledger key is (query, checkpoint's query id, batch id): batch ids restart at 0 in a
    new checkpoint, and must not collide with the batches an older one committed. With
    ``kafka_config``, the query's topic (named like the query) is checked on every batch: a topic
    recreated under the checkpoint fails the query (:class:`TopicRecreated`), or with
    ``fail_on_data_loss=False`` is logged and accepted.
    """

    def __init__(self, postgres_url: str, query_name: str, spec: SinkSpec, kafka_config: dict | None = None,
                 fail_on_data_loss: bool = True):
        self.url = postgres_url
        self.query_name = query_name
        self.spec = spec
        self.kafka_config = kafka_config
        self.fail_on_data_loss = fail_on_data_loss
        self._sql = {m.sql_file: m.sql for m in (spec.events, REJECTS) if m is not None}
        self._before = {m.sql_file: read_sql(f"sinks/{m.before}.sql") for m in (spec.events, REJECTS)
                        if m is not None and m.before}

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        checkpoint = checkpoint_id(batch)
        table = batch.select(*self.spec.columns).toArrow()
        # After the records were read: an id still equal to the checkpoint's proves they came from
        # the topic it started on (a recreation before or during the read changes it).
        topic_id = self.current_topic_id() if self.kafka_config else None
        computed = time.monotonic()
        written = self.commit(table, batch_id, checkpoint, topic_id=topic_id)
        log.info(BATCH_LINE, self.query_name, batch_id, REPLAYED if written is None else written, table.num_rows,
                 table.nbytes, computed - started, time.monotonic() - computed)

    def current_topic_id(self) -> str | None:
        """The query's topic's id now; None when the topic is gone and data loss is accepted."""
        try:
            return topic_ids(self.kafka_config, [self.query_name])[self.query_name]
        except TopicMissing:
            if self.fail_on_data_loss:
                raise TopicRecreated(
                    f"topic {self.query_name} was deleted under the stream while it read: its records may be "
                    f"gone. {_DATA_LOSS_HINT}") from None
            log.warning("topic %s was deleted under the stream (failOnDataLoss=false: going on)", self.query_name)
            return None

    def commit(self, table: pa.Table, batch_id: int, checkpoint: str = "",
               retry_for_s: float | None = None, topic_id: str | None = None) -> dict[str, int] | None:
        """:meth:`write`, retried through transient database faults (then one clear error)."""
        return with_retries(f"{self.query_name} batch {batch_id}",
                            lambda: self.write(table, batch_id, checkpoint, topic_id), retry_for_s)

    def write(self, table: pa.Table, batch_id: int, checkpoint: str = "",
              topic_id: str | None = None) -> dict[str, int] | None:
        """One attempt: {table: rows it received}, or None when this batch was already committed (a replay)."""
        key = (self.query_name, checkpoint, batch_id)
        with connect(self.url) as conn, conn.transaction():
            claimed = conn.execute(
                "INSERT INTO stream_batches (query_name, checkpoint_id, batch_id, row_count) VALUES (%s, %s, %s, 0) "
                "ON CONFLICT DO NOTHING RETURNING 1", key).fetchone()
            if claimed is None:
                return None
            if topic_id is not None:
                self._check_topic(conn, checkpoint, topic_id)
            written: dict[str, int] = {}
            is_valid = pc.is_null(table["reason"])
            if self.spec.events is not None:
                events = table.filter(is_valid)
                if self.spec.prepare is not None:
                    events = self.spec.prepare(events)
                written.update(self._merge(conn, self.spec.events, events))
            written.update(self._merge(conn, REJECTS, table.filter(pc.invert(is_valid))))
            conn.execute("UPDATE stream_batches SET row_count = %s, table_rows = %s "
                         "WHERE query_name = %s AND checkpoint_id = %s AND batch_id = %s",
                         (sum(written.values()), Jsonb(written), *key))
            return written

    def _check_topic(self, conn, checkpoint: str, topic_id: str) -> None:
        """Record the topic's id on the checkpoint's first batch; on later ones, refuse another id."""
        key = (self.query_name, checkpoint, self.query_name)
        recorded = conn.execute(
            "INSERT INTO stream_topics (query_name, checkpoint_id, topic, topic_id) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (query_name, checkpoint_id, topic) DO UPDATE SET topic_id = stream_topics.topic_id "
            "RETURNING topic_id", (*key, topic_id)).fetchone()[0]
        if recorded == topic_id:
            return
        what = (f"topic {self.query_name} was deleted and created again under this stream's checkpoint (topic id "
                f"{recorded}, now {topic_id}): the offsets in the checkpoint name other records in the new topic, "
                "and reading on from them would skip the new topic's first records without a word.")
        if self.fail_on_data_loss:
            raise TopicRecreated(f"{what} {_DATA_LOSS_HINT}")
        log.warning("%s Going on from the checkpoint's offsets (failOnDataLoss=false).", what)
        conn.execute("UPDATE stream_topics SET topic_id = %s, recorded_at = now() "
                     "WHERE query_name = %s AND checkpoint_id = %s AND topic = %s", (topic_id, *key))

    def _merge(self, conn, merge: Merge, rows: pa.Table) -> dict[str, int]:
        if rows.num_rows == 0:
            return {}
        conn.execute(merge.staging_ddl)
        names = sql.SQL(", ").join(map(sql.Identifier, merge.names))
        with conn.cursor().copy(sql.SQL("COPY staging ({}) FROM STDIN WITH (FORMAT csv)").format(names)) as copy:
            copy.write(arrow_to_csv(rows.select(merge.names)))
        if merge.sql_file in self._before:
            conn.execute(self._before[merge.sql_file])
        cur = conn.execute(self._sql[merge.sql_file])
        counts = dict(zip([d.name for d in cur.description], cur.fetchone(), strict=True))
        conn.execute("DROP TABLE staging")
        return {name: int(n) for name, n in counts.items() if n}
