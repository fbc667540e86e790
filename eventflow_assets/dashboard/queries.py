"""What the dashboard reads, one function per figure, over the aggregate and analytics tables only.

Every query is bounded: a range of an index (the latest windows, the last minutes of progress,
the latest rejected records) or a table whose size does not grow with the events (one row per
currency, segment or user). None reads ``orders_raw``. The SQL is in ``sql/dashboard``.

:func:`read_snapshot` runs them all in one read-only REPEATABLE READ transaction, so the figures
of one refresh agree with each other even while the stream commits batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import psycopg
from psycopg.rows import dict_row

from eventflow_assets.ingestion.events import TOPIC_NAMES
from eventflow_assets.storage.postgres import connect, read_sql

# The stream's queries: one per topic, named after it (processing/queries.py QUERY_NAMES; not
# imported: that module needs Spark). Together they read every record of the three topics.
QUERIES = TOPIC_NAMES

WINDOW_SPAN = timedelta(hours=3)
HEALTH_SPAN = timedelta(minutes=30)
REJECTED_SPAN = timedelta(hours=1)
MAX_BATCHES = 2000
REJECTED_SAMPLE = 10_000


def _rows(conn: psycopg.Connection, name: str, params: dict | None = None) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(read_sql(f"dashboard/{name}.sql"), params or {}).fetchall()


def currency_totals(conn: psycopg.Connection) -> list[dict]:
    """All-time ``total_revenue`` and ``order_count`` per currency, from the 5-minute windows."""
    return _rows(conn, "currency_totals")


def revenue_windows(conn: psycopg.Connection, span: timedelta = WINDOW_SPAN) -> list[dict]:
    """The windows per currency starting less than ``span`` before the latest, with their USD value."""
    return _rows(conn, "revenue_windows", {"span": span})


def funnel_windows(conn: psycopg.Connection, span: timedelta = WINDOW_SPAN) -> list[dict]:
    """Views, orders, viewing and ordering users per window, over the same span as the revenue."""
    return _rows(conn, "funnel_windows", {"span": span})


def top_converting_users(conn: psycopg.Connection, limit: int = 10) -> list[dict]:
    return _rows(conn, "top_converting_users", {"limit": limit})


def segment_summary(conn: psycopg.Connection) -> list[dict]:
    return _rows(conn, "segment_summary")


def stream_latest(conn: psycopg.Connection, queries: tuple[str, ...] = QUERIES) -> list[dict]:
    """The latest batch of each query; a query that never ran has ``batch_id`` None."""
    return _rows(conn, "stream_latest", {"queries": list(queries)})


def stream_history(conn: psycopg.Connection, span: timedelta = HEALTH_SPAN, queries: tuple[str, ...] = QUERIES,
                   limit: int = MAX_BATCHES) -> list[dict]:
    return _rows(conn, "stream_history", {"queries": list(queries), "span": span, "limit": limit})


def topic_throughput(conn: psycopg.Connection, span: timedelta = HEALTH_SPAN, queries: tuple[str, ...] = QUERIES,
                     limit: int = MAX_BATCHES) -> list[dict]:
    """Events/s per topic between consecutive batches of the query reading it."""
    return _rows(conn, "topic_throughput", {"queries": list(queries), "span": span, "limit": limit})


def rejected_rate(conn: psycopg.Connection, span: timedelta = REJECTED_SPAN,
                  queries: tuple[str, ...] = QUERIES) -> dict:
    """``{"rejected": n, "records": n}`` read by ``queries`` over ``span``."""
    return _rows(conn, "rejected_rate", {"queries": list(queries), "span": span})[0]


def rejected_reasons(conn: psycopg.Connection, span: timedelta = REJECTED_SPAN, limit: int = 5,
                     sample: int = REJECTED_SAMPLE) -> list[dict]:
    return _rows(conn, "rejected_reasons", {"span": span, "limit": limit, "sample": sample})


@dataclass(frozen=True)
class Snapshot:
    read_at: datetime
    totals: list[dict]
    revenue: list[dict]
    funnel: list[dict]
    top_users: list[dict]
    segments: list[dict]
    latest: list[dict]
    history: list[dict]
    throughput: list[dict]
    rejected: dict
    reasons: list[dict]

    @property
    def recent_orders(self) -> int:
        return sum(r["order_count"] for r in self.revenue)

    @property
    def recent_revenue_usd(self) -> Decimal:
        """USD revenue of the windows shown (currencies without a rate left out)."""
        return sum((r["total_revenue_usd"] for r in self.revenue if r["total_revenue_usd"] is not None), Decimal(0))

    @property
    def recent_avg_order_usd(self) -> Decimal | None:
        rated = sum(r["order_count"] for r in self.revenue if r["total_revenue_usd"] is not None)
        return (self.recent_revenue_usd / rated).quantize(Decimal("0.01")) if rated else None

    @property
    def conversion(self) -> tuple[int, int, Decimal | None]:
        """(views, orders, orders / views x 100) over the funnel's windows."""
        views = sum(r["views"] for r in self.funnel)
        orders = sum(r["orders"] for r in self.funnel)
        return views, orders, (Decimal(orders * 100) / views).quantize(Decimal("0.01")) if views else None


def read_snapshot(url: str) -> Snapshot:
    with connect(url) as conn:
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            conn.execute("SET LOCAL TIME ZONE 'UTC'")
            conn.execute("SET LOCAL statement_timeout = '10s'")
            return Snapshot(
                read_at=conn.execute("SELECT now()").fetchone()[0],
                totals=currency_totals(conn), revenue=revenue_windows(conn), funnel=funnel_windows(conn),
                top_users=top_converting_users(conn), segments=segment_summary(conn),
                latest=stream_latest(conn), history=stream_history(conn), throughput=topic_throughput(conn),
                rejected=rejected_rate(conn), reasons=rejected_reasons(conn))
