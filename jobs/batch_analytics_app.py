"""The seed's BatchAnalyticsApp: the four batch analyses over the streaming tables.

    python jobs/batch_analytics_app.py [--top N] [--trends-from TS --trends-to TS]
    spark-submit jobs/batch_analytics_app.py [options]

Reads PostgreSQL through Spark's JDBC source, replaces the analytics_* tables and prints the
results: top revenue by currency, conversion rates per user, revenue trends, user segments.
PostgreSQL comes from EVENTFLOW_POSTGRES_URL, else from the running `eventflow up`; Kafka is
not used.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime, timezone

from eventflow_assets.errors import EventFlowError
from eventflow_assets.local.stack import resolve_endpoints
from eventflow_assets.processing.java import check_java
from eventflow_assets.settings import Settings
from eventflow_assets.storage.schema import apply_schema


def _utc(text: str) -> datetime:
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="batch_analytics_app.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--top", type=int, default=10, help="users shown by conversion rate (default 10)")
    p.add_argument("--latest", type=int, default=12, help="periods shown per revenue trend table (default 12)")
    p.add_argument("--trends-from", type=_utc, metavar="TS",
                   help="recompute revenue trends only for windows starting at or after TS (ISO-8601, UTC "
                        "unless an offset is given; with --trends-to)")
    p.add_argument("--trends-to", type=_utc, metavar="TS", help="... and before TS")
    return p


def postgres_url(settings: Settings) -> str:
    """The configured database, else the local stack's; Kafka need not be configured."""
    return settings.postgres_url or resolve_endpoints(settings).postgres_url


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.trends_from is None) != (args.trends_to is None):
        parser.error("--trends-from and --trends-to go together")
    if args.trends_from is not None and args.trends_from >= args.trends_to:
        parser.error("--trends-from must be before --trends-to")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        url = postgres_url(Settings.from_env())
        check_java()
        apply_schema(url)
        from eventflow_assets.analytics.run import format_report, run_analyses
        from eventflow_assets.processing.spark import build_spark_session

        spark = build_spark_session("eventflow-batch-analytics")
        try:
            window_range = (args.trends_from, args.trends_to) if args.trends_from else None
            results = run_analyses(spark, url, window_range)
        finally:
            spark.stop()
        print(format_report(results, top=args.top, latest=args.latest), flush=True)
        return 0
    except EventFlowError as exc:
        print(f"batch_analytics_app: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
