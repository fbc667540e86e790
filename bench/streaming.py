"""Streaming benchmark: catch-up speed on a backlog, then sustained throughput and latency.

    python bench/streaming.py [--backlog 1000000] [--rates 10,1000,20000] [--duration 60]
                              [--sources kafka,eventflow_kafka]

Starts its own embedded Apache Kafka and PostgreSQL (temporary state), runs
jobs/streaming_app.py as a separate process exactly as users do, once per Kafka source (Spark's
connector `kafka`, EventFlow's Python source `eventflow_kafka`), and prints one line per
measurement:

- catch-up: N events already in the topics, `streaming_app.py --available-now` from a new
  checkpoint; events/s = N / wall time (JVM start included), and per-query batch time.
- sustained at R events/s for D seconds (trigger 10 s): lag per query (records in the topics
  beyond what the batch read, when it completed) at the first and last batch, and end-to-end
  order latency p50/p95 = orders_raw.ingested_at - event time (the row's commit follows within
  milliseconds), also for the first and last third of the run: neither growing = sustainable.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

from eventflow_assets.ingestion.generator import EventGenerator
from eventflow_assets.ingestion.producer import produce
from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.local.processes import free_port
from eventflow_assets.local.stack import LocalStack
from eventflow_assets.settings import Settings
from eventflow_assets.storage.schema import apply_schema

APP = Path(__file__).resolve().parents[1] / "jobs" / "streaming_app.py"


def _env(endpoints, home: Path) -> dict:
    return {**os.environ, "EVENTFLOW_KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap_servers,
            "EVENTFLOW_POSTGRES_URL": endpoints.postgres_url, "EVENTFLOW_HOME": str(home)}


def _reset_tables(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE orders_raw, revenue_by_currency_5min, conversion_funnel_5min, rejected_events, "
                     "stream_batches, stream_progress")


def catch_up(endpoints, home: Path, backlog: int, source: str) -> None:
    _reset_tables(endpoints.postgres_url)
    started = time.monotonic()
    subprocess.run([sys.executable, str(APP), "--available-now", "--source-format", source,
                    "--checkpoint-dir", str(home / f"chk-backlog-{source}")],
                   env=_env(endpoints, home), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - started
    rows, span = drain_figures(endpoints.postgres_url)
    with psycopg.connect(endpoints.postgres_url) as conn:
        orders = conn.execute("SELECT count(*) FROM orders_raw").fetchone()[0]
    print(f"catch-up [{source}]: {backlog:,} events ({orders:,} orders) in {wall:.1f}s wall "
          f"= {backlog / wall:,.0f} events/s (JVM start included); first batch start to last commit "
          f"{span:.1f}s = {backlog / span:,.0f} events/s")
    for name, rows_in, ms, batches in rows:
        print(f"  {name:<26} {rows_in:>10,} rows in {batches} batches, {ms / 1000:.1f}s of batch time")


def drain_figures(url: str) -> tuple[list[tuple[str, int, int, int]], float]:
    """Per query (name, input rows, batch milliseconds, batches) from ``stream_progress``, and the
    seconds from the first batch's start to the last commit (a batch's row is recorded as it ends)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT query_name, sum(input_rows)::bigint, sum(duration_ms)::bigint, count(*) "
                            "FROM stream_progress GROUP BY 1 ORDER BY 1").fetchall()
        span = conn.execute("SELECT extract(epoch FROM max(recorded_at) - min(recorded_at "
                            "- make_interval(secs => duration_ms / 1000.0))) FROM stream_progress").fetchone()[0]
    return rows, float(span)


def sustained(endpoints, home: Path, rate: float, duration: float, source: str) -> None:
    _reset_tables(endpoints.postgres_url)
    log = open(home / f"stream-{rate:g}-{source}.log", "wb")
    app = subprocess.Popen([sys.executable, str(APP), "--starting-offsets", "latest", "--source-format", source,
                            "--checkpoint-dir", str(home / f"chk-{rate:g}-{source}")],
                           env=_env(endpoints, home), stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_first_batches(endpoints.postgres_url)
        stop = threading.Event()
        started = time.time()
        stats = produce(endpoints.kafka_config(), EventGenerator(seed=int(rate)), rate=rate, duration=duration,
                        stop=stop)
        produced_until = time.time()
        time.sleep(25)  # two more triggers to drain
        with psycopg.connect(endpoints.postgres_url) as conn:
            lags = conn.execute("""
                SELECT query_name,
                       (SELECT sum(value::bigint) FROM jsonb_each_text(lag)) AS lag, recorded_at
                FROM stream_progress WHERE recorded_at BETWEEN to_timestamp(%s) AND to_timestamp(%s)
                ORDER BY recorded_at""", (started + 10, produced_until)).fetchall()
            latencies = [(float(r[0]), float(r[1])) for r in conn.execute(
                """SELECT extract(epoch FROM "timestamp"), extract(epoch FROM ingested_at - "timestamp")
                   FROM orders_raw WHERE "timestamp" >= to_timestamp(%s)""", (started,))]
    finally:
        app.terminate()
        app.wait(120)
    first, last = {}, {}
    for name, lag, _ in lags:
        first.setdefault(name, lag)
        last[name] = lag
    third = (produced_until - started) / 3
    early = [lat for ts, lat in latencies if ts < started + third]
    late = [lat for ts, lat in latencies if ts >= produced_until - third]
    lat = sorted(lat for _, lat in latencies)
    print(f"sustained [{source}] {rate:,.0f} events/s for {duration:.0f}s: {stats.rate:,.0f} events/s produced, "
          f"{len(lat):,} orders, latency p50 {_pct(lat, 50):.2f}s p95 {_pct(lat, 95):.2f}s "
          f"(p50 first third {_pct(sorted(early), 50):.2f}s, last third {_pct(sorted(late), 50):.2f}s); "
          "lag (records) first->last batch: " + ", ".join(f"{n} {first[n]:,}->{last[n]:,}" for n in sorted(last)))


def _pct(values: list[float], pct: int) -> float:
    return values[int(pct / 100 * (len(values) - 1))] if values else float("nan")


def _wait_for_first_batches(url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(url) as conn:
            if conn.execute("SELECT count(DISTINCT query_name) FROM stream_progress").fetchone()[0] == 3:
                return
        time.sleep(1)
    raise RuntimeError("the streaming job did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=1_000_000, help="0 to skip")
    parser.add_argument("--rates", default="10,1000,20000", help="comma-separated events/s; empty to skip")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--sources", default="kafka,eventflow_kafka", help="comma-separated source formats")
    args = parser.parse_args()
    sources = [s for s in args.sources.split(",") if s]
    home = Path(tempfile.mkdtemp(prefix="eventflow-bench-"))
    settings = Settings.from_env({"EVENTFLOW_HOME": str(home)})
    with LocalStack(settings, free_port(), free_port()) as stack:
        provision_topics(stack.endpoints.kafka_config())
        apply_schema(stack.endpoints.postgres_url)
        if args.backlog:
            stats = produce(stack.endpoints.kafka_config(), EventGenerator(seed=1), count=args.backlog)
            assert stats.delivered == args.backlog, f"only {stats.delivered:,} of {args.backlog:,} events delivered"
            for source in sources:
                catch_up(stack.endpoints, home, args.backlog, source)
        for rate in filter(None, args.rates.split(",")):
            for source in sources:
                sustained(stack.endpoints, home, float(rate), args.duration, source)
    return 0


if __name__ == "__main__":
    sys.exit(main())
