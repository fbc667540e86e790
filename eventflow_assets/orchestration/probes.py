"""Short, time-bounded reads of Kafka and ``stream_progress`` for sensors and checks.

A sensor that blocks on Kafka can hang the daemon's heartbeat, so every call here has a small
timeout and raises :class:`EventFlowError` (with the reason) instead of waiting.
"""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone

from confluent_kafka import TopicPartition

from eventflow_assets.errors import EventFlowError
from eventflow_assets.ingestion.kafka_clients import admin_client, check_reachable, consumer
from eventflow_assets.ingestion.log_dirs import log_sizes
from eventflow_assets.ingestion.offsets import partition_ranges
from eventflow_assets.storage.postgres import connect


def topic_ranges(kafka_config: dict, topics, timeout: float = 3.0) -> dict[tuple[str, int], tuple[int, int]]:
    """{(topic, partition): (earliest, end)} for the topics that exist; an error names what failed."""
    metadata = check_reachable(admin_client(kafka_config), kafka_config["bootstrap.servers"], timeout)
    partitions = [(t, p) for t in topics if t in metadata.topics for p in sorted(metadata.topics[t].partitions)]
    return partition_ranges(kafka_config, partitions, timeout=timeout)


def under_replicated(metadata, topics) -> dict[str, int]:
    """{topic: partitions whose in-sync replicas are fewer than their replicas} for ``topics`` that
    exist in ``metadata`` (an AdminClient ``list_topics`` answer)."""
    return {t: sum(1 for p in metadata.topics[t].partitions.values() if len(p.isrs) < len(p.replicas))
            for t in topics if t in metadata.topics}


def topic_storage(kafka_config: dict, topics, timeout: float = 3.0) -> tuple[dict[str, int], dict[str, int] | None,
                                                                            str | None]:
    """(under-replicated partitions per topic, log bytes on disk per topic over all replicas or
    None, why the sizes are missing or None) for the ``topics`` that exist."""
    metadata = check_reachable(admin_client(kafka_config), kafka_config["bootstrap.servers"], timeout)
    lagging = under_replicated(metadata, topics)
    try:
        sizes = log_sizes(kafka_config, metadata, topics, timeout)
    except EventFlowError as exc:
        return lagging, None, str(exc)
    return lagging, sizes, None


def newest_record_before(kafka_config: dict, topics, before: datetime, scan: int = 500,
                         timeout: float = 5.0) -> datetime | None:
    """Kafka timestamp of the newest record of ``topics`` stamped at or before ``before``; None if none.

    Reads at most the last ``scan`` records of each partition. When all of them are newer than
    ``before`` and the partition holds older ones (heavy traffic), ``before`` itself is returned:
    records at least that old exist, their exact time is not worth a longer read.
    """
    ranges = {tp: r for tp, r in topic_ranges(kafka_config, topics, timeout).items() if r[1] > r[0]}
    if not ranges:
        return None
    cutoff = int(before.timestamp() * 1000)
    starts = {tp: max(lo, hi - scan) for tp, (lo, hi) in ranges.items()}
    c = consumer({**kafka_config, "group.id": f"eventflow-probe-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 10})
    found: dict[tuple[str, int], int] = {}
    pending = set(ranges)
    try:
        c.assign([TopicPartition(t, p, starts[(t, p)]) for t, p in ranges])
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for msg in c.consume(1000, 0.2):
                if msg.error():
                    continue
                tp = (msg.topic(), msg.partition())
                if msg.timestamp()[1] <= cutoff:
                    found[tp] = max(found.get(tp, 0), msg.timestamp()[1])
                if msg.offset() >= ranges[tp][1] - 1:
                    pending.discard(tp)
    finally:
        c.close()
    if pending:
        raise EventFlowError(f"no record read within {timeout:.0f}s from {sorted(pending)}")
    for tp, (lo, _) in ranges.items():
        if tp not in found and starts[tp] > lo:
            found[tp] = cutoff
    return datetime.fromtimestamp(max(found.values()) / 1000, tz=timezone.utc) if found else None


@contextmanager
def _bounded(postgres_url: str):
    """A connection whose connect and statements give up after 3 s."""
    with connect(postgres_url, connect_timeout=3) as conn:
        conn.execute("SET statement_timeout = '3s'")
        yield conn


def stream_lag(postgres_url: str) -> dict[str, dict[str, int]]:
    """{query: {"topic:partition": records behind}} from each query's latest ``stream_progress`` row
    (the one recorded last: batch ids restart with a new checkpoint)."""
    with _bounded(postgres_url) as conn:
        rows = conn.execute("""SELECT DISTINCT ON (query_name) query_name, lag FROM stream_progress
                               ORDER BY query_name, recorded_at DESC""").fetchall()
    return {name: {k: int(v) for k, v in lag.items()} for name, lag in rows}


def latest_watermark(postgres_url: str, query_name: str) -> datetime | None:
    """The watermark of ``query_name``'s latest micro-batch (by ``recorded_at``); None before any event."""
    with _bounded(postgres_url) as conn:
        row = conn.execute("SELECT watermark FROM stream_progress WHERE query_name = %s "
                           "ORDER BY recorded_at DESC LIMIT 1", (query_name,)).fetchone()
    return row[0] if row else None


def earliest_revenue_window(postgres_url: str) -> datetime | None:
    with _bounded(postgres_url) as conn:
        return conn.execute("SELECT min(window_start) FROM revenue_by_currency_5min").fetchone()[0]


def table_sizes(postgres_url: str, tables) -> dict[str, int]:
    """{table: bytes on disk} with indexes and TOAST (``pg_total_relation_size``), summed over a
    partitioned table's partitions; tables that do not exist are absent."""
    with _bounded(postgres_url) as conn:
        rows = conn.execute("""SELECT t.name, sum(pg_total_relation_size(part.oid))::bigint
                               FROM unnest(%s::text[]) AS t(name)
                               JOIN pg_class c ON c.oid = to_regclass(t.name)
                               CROSS JOIN LATERAL (SELECT c.oid UNION SELECT relid FROM pg_partition_tree(c.oid))
                                   AS part(oid)
                               GROUP BY t.name""", (list(tables),)).fetchall()
    return {name: int(size) for name, size in rows}


def server_connections(postgres_url: str) -> dict[str, int]:
    """The server's client connections (all databases, this one, active) from ``pg_stat_activity``,
    its ``max_connections`` and the connections reserved for superusers, and the database's size."""
    with _bounded(postgres_url) as conn:
        row = conn.execute("""SELECT count(*),
                                     count(*) FILTER (WHERE datname = current_database()),
                                     count(*) FILTER (WHERE state = 'active'),
                                     current_setting('max_connections')::int,
                                     current_setting('superuser_reserved_connections')::int,
                                     pg_database_size(current_database())
                              FROM pg_stat_activity WHERE backend_type = 'client backend'""").fetchone()
    names = ("connections", "connections_this_database", "connections_active", "max_connections",
             "superuser_reserved_connections", "database_size_bytes")
    return dict(zip(names, (int(v) for v in row), strict=True))
