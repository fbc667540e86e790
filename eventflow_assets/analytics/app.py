"""The batch analytics job: the four analyses over the streaming tables.

Reads PostgreSQL through Spark's JDBC source, replaces the analytics_* tables and prints the
results: top revenue by currency, conversion rates per user, revenue trends, user segments.
PostgreSQL comes from EVENTFLOW_POSTGRES_URL, else from the running `eventflow up` /
`eventflow services`; the inputs are read from EVENTFLOW_POSTGRES_READ_URL when set (a read
replica, once caught up), the tables always written to the primary. Kafka is not used. Shared by `eventflow analytics` and
`jobs/batch_analytics_app.py` (which spark-submit runs). Launched by Dagster through Pipes (the
analytics assets), it also reports each table it wrote, with its metadata, to Dagster.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from eventflow_assets.analytics.names import ANALYSES
from eventflow_assets.settings import Settings

APP_NAME = "eventflow-batch-analytics"

EXAMPLES = """examples:
  {prog}   # all four analyses, printed
  {prog} --top 20   # show the 20 best converting users
  {prog} --analysis user_segments --analysis conversion_rates
  {prog} --trends-from 2026-12-01T10:00:00Z --trends-to 2026-12-01T12:00:00Z
  spark-submit --master spark://127.0.0.1:7077 jobs/batch_analytics_app.py
"""


def _utc(text: str) -> datetime:
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--top", type=int, default=10, help="users shown by conversion rate (default 10)")
    p.add_argument("--latest", type=int, default=12, help="periods shown per revenue trend table (default 12)")
    p.add_argument("--trends-from", type=_utc, metavar="TS",
                   help="recompute revenue trends only for windows starting at or after TS (ISO-8601, UTC "
                        "unless an offset is given; with --trends-to)")
    p.add_argument("--trends-to", type=_utc, metavar="TS", help="... and before TS")
    p.add_argument("--analysis", action="append", choices=ANALYSES, metavar="NAME",
                   help=f"run only this analysis (repeatable; default all four: {', '.join(ANALYSES)})")


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if (args.trends_from is None) != (args.trends_to is None):
        parser.error("--trends-from and --trends-to go together")
    if args.trends_from is not None and args.trends_from >= args.trends_to:
        parser.error("--trends-from must be before --trends-to")


def postgres_url(settings: Settings) -> str:
    """The configured database, else the local stack's; Kafka need not be configured."""
    from eventflow_assets.local.stack import resolve_endpoints

    return settings.postgres_url or resolve_endpoints(settings).postgres_url


def run(args: argparse.Namespace, settings: Settings) -> int:
    from eventflow_assets.analytics.pipes import dagster_pipes, report
    from eventflow_assets.processing.java import check_java
    from eventflow_assets.storage.schema import apply_schema

    # Under Dagster Pipes, an error raised in this block is reported to the run before the exit.
    with dagster_pipes() as pipes:
        url = postgres_url(settings)
        check_java()
        apply_schema(url)
        from eventflow_assets.analytics.run import format_report, run_analyses
        from eventflow_assets.processing.spark import build_spark_session

        spark = build_spark_session(APP_NAME)
        try:
            window_range = (args.trends_from, args.trends_to) if args.trends_from else None
            results = run_analyses(spark, url, window_range, analyses=tuple(args.analysis or ANALYSES),
                                   read_url=settings.read_url(url))
        finally:
            spark.stop()
        if pipes is not None:
            report(pipes, results, window_range)
    print(format_report(results, top=args.top, latest=args.latest), flush=True)
    return 0
