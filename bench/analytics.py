"""Batch analytics: the four analyses in Spark (JDBC reads) against the same in plain PostgreSQL SQL.

    python bench/analytics.py [--rows 1000000] [--users N] [--days 30] [--runs 2]

Fills orders_raw with --rows synthetic orders (generated server-side with generate_series), then
revenue_by_currency_5min and conversion_funnel_5min from them (plus view-only funnel rows), and
times each analysis: Spark = JDBC read + transform + toArrow, without writing (run 1 includes
the JVM's warm-up); SQL = sql/analytics/*.sql fetched by psycopg. Finally one full Spark run that
also replaces the analytics tables.

Without EVENTFLOW_POSTGRES_URL it starts an embedded PostgreSQL in a temporary directory (and
removes it afterwards). With it, the database must have an empty orders_raw, unless
--replace-data allows the bench to delete the streaming tables' rows there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from eventflow_assets.analytics.run import ANALYSES, run_analyses
from eventflow_assets.local.postgres_server import EmbeddedPostgres
from eventflow_assets.local.processes import free_port
from eventflow_assets.processing.spark import build_spark_session
from eventflow_assets.storage.postgres import connect, read_sql
from eventflow_assets.storage.schema import apply_schema

START = "2026-11-01 00:00:00+00"
SQL_FILES = {"top_revenue_by_currency": ["top_revenue_by_currency"],
             "conversion_rates": ["conversion_rates"],
             "revenue_trends": ["revenue_trends", "revenue_trends_hourly", "revenue_trends_daily",
                                "revenue_trends_usd"],
             "user_segments": ["user_segments", "segment_summary"]}

FILL = [
    # orders_raw's day partitions for the days filled.
    """SELECT orders_raw_day_partition((d AT TIME ZONE 'UTC')::date)
       FROM generate_series(%(start)s::timestamptz, %(start)s::timestamptz + %(days)s * interval '1 day',
                            interval '1 day') AS d""",
    # Deterministic orders: user, price (1.00-500.99), currency and time spread evenly over --days.
    """INSERT INTO orders_raw (order_id, user_id, product_id, price, currency, "timestamp")
       SELECT 'o' || g, 'u' || ((g::bigint * 2654435761) %% %(users)s), 'p' || (g %% 1000),
              ((g::bigint * 7919) %% 50000 + 100) / 100.0,
              (ARRAY['USD', 'USD', 'EUR', 'EUR', 'GBP', 'CAD', 'AUD'])[1 + (g::bigint * 31) %% 7],
              %(start)s::timestamptz + (g - 1) * (%(days)s * interval '1 day' / %(rows)s)
       FROM generate_series(1, %(rows)s) AS g""",
    """INSERT INTO revenue_by_currency_5min (window_start, window_end, currency, total_revenue, order_count,
                                             avg_order_value)
       SELECT w, w + interval '5 minutes', currency, sum(price), count(*), round(avg(price), 2)
       FROM (SELECT date_bin('5 minutes', "timestamp", %(start)s::timestamptz) AS w, currency, price
             FROM orders_raw) o
       GROUP BY w, currency""",
    """INSERT INTO conversion_funnel_5min (window_start, window_end, user_id, view_count, order_count)
       SELECT w, w + interval '5 minutes', user_id, 2 * count(*) + (hashtext(user_id) & 3), count(*)
       FROM (SELECT date_bin('5 minutes', "timestamp", %(start)s::timestamptz) AS w, user_id FROM orders_raw) o
       GROUP BY w, user_id""",
    # Views without orders, a quarter as many rows as orders.
    """INSERT INTO conversion_funnel_5min (window_start, window_end, user_id, view_count, order_count)
       SELECT date_bin('5 minutes', t, %(start)s::timestamptz), date_bin('5 minutes', t, %(start)s::timestamptz)
              + interval '5 minutes', 'u' || ((g::bigint * 40503) %% (2 * %(users)s)), 1 + g %% 3, 0
       FROM (SELECT g, %(start)s::timestamptz + (g - 1) * (%(days)s * interval '1 day' / (%(rows)s / 4)) AS t
             FROM generate_series(1, %(rows)s / 4) AS g) v
       ON CONFLICT (window_start, user_id) DO NOTHING""",
]


def fill(url: str, rows: int, users: int, days: int, replace_data: bool) -> None:
    params = {"rows": rows, "users": users, "days": days, "start": START}
    with connect(url) as conn:
        if conn.execute("SELECT EXISTS (SELECT 1 FROM orders_raw)").fetchone()[0] and not replace_data:
            raise SystemExit("orders_raw is not empty: use an empty database, or --replace-data to delete its rows")
        conn.execute("SET synchronous_commit = off")
        conn.execute("TRUNCATE orders_raw, revenue_by_currency_5min, conversion_funnel_5min")
        for statement in FILL:
            conn.execute(statement, params)
        conn.commit()
    with connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE orders_raw, revenue_by_currency_5min, conversion_funnel_5min")
        counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("orders_raw", "revenue_by_currency_5min", "conversion_funnel_5min")]
    print("rows: orders_raw={:,} revenue_by_currency_5min={:,} conversion_funnel_5min={:,}".format(*counts))


def time_sql(url: str) -> dict[str, float]:
    times = {}
    with connect(url) as conn:
        for analysis, files in SQL_FILES.items():
            started = time.monotonic()
            for name in files:
                sql = read_sql(f"analytics/{name}.sql")
                if name == "user_segments":
                    conn.execute(f"CREATE TEMP TABLE segments ON COMMIT DROP AS {sql}")
                    conn.execute("SELECT * FROM segments").fetchall()
                else:
                    conn.execute(sql).fetchall()
            times[analysis] = time.monotonic() - started
        conn.rollback()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="orders_raw rows (default 1,000,000)")
    parser.add_argument("--users", type=int, help="distinct ordering users (default rows / 20)")
    parser.add_argument("--days", type=int, default=30, help="days the orders span (default 30)")
    parser.add_argument("--runs", type=int, default=2, help="timed runs of each side (default 2)")
    parser.add_argument("--replace-data", action="store_true",
                        help="with EVENTFLOW_POSTGRES_URL: delete the streaming tables' rows first")
    args = parser.parse_args()
    server, state = None, None
    url = os.environ.get("EVENTFLOW_POSTGRES_URL")
    if not url:
        state = Path(tempfile.mkdtemp(prefix="eventflow-bench-postgres-"))
        server = EmbeddedPostgres(state, free_port())
        server.start()
        url = server.url("eventflow")
    try:
        apply_schema(url)
        started = time.monotonic()
        fill(url, args.rows, args.users or max(1, args.rows // 20), args.days, args.replace_data)
        print(f"fill: {time.monotonic() - started:.1f}s")
        started = time.monotonic()
        spark = build_spark_session("eventflow-bench-analytics")
        print(f"spark session: {time.monotonic() - started:.1f}s")
        try:
            spark_runs, sql_runs = [], []
            for _ in range(args.runs):
                spark_runs.append({k: r.seconds for k, r in run_analyses(spark, url, write=False).items()})
                sql_runs.append(time_sql(url))
            print(f"\n{'analysis':<26}" + "".join(f"{f'spark #{i + 1}':>10}{f'sql #{i + 1}':>10}"
                                                  for i in range(args.runs)))
            for name in (*ANALYSES, "total"):
                cells = "".join(
                    f"{_get(s, name):>9.2f}s{_get(q, name):>9.2f}s" for s, q in zip(spark_runs, sql_runs, strict=True))
                print(f"{name:<26}{cells}")
            started = time.monotonic()
            written = run_analyses(spark, url)
            rows = sum(sum(r.written.values()) for r in written.values())
            print(f"\nspark run with writes: {time.monotonic() - started:.2f}s, {rows:,} analytics rows written")
        finally:
            spark.stop()
    finally:
        if server:
            server.stop()
            shutil.rmtree(state, ignore_errors=True)
    return 0


def _get(times: dict[str, float], name: str) -> float:
    return sum(times.values()) if name == "total" else times[name]


if __name__ == "__main__":
    sys.exit(main())
