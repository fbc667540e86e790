"""The seed's StreamingApp: one streaming query per topic, into PostgreSQL (docs/streaming.md).

    python jobs/streaming_app.py [--available-now] [options]
    spark-submit jobs/streaming_app.py [--available-now] [options]

Runs until SIGTERM/Ctrl-C (each query stops after its current batch commits), or with
--available-now processes what the topics hold and exits. Kafka and PostgreSQL come from
EVENTFLOW_* variables, else from the running `eventflow up`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from eventflow_assets.errors import EventFlowError
from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.local.stack import resolve_endpoints
from eventflow_assets.processing.java import check_java
from eventflow_assets.processing.queries import StreamConfig
from eventflow_assets.settings import Settings
from eventflow_assets.storage.schema import apply_schema


def build_parser() -> argparse.ArgumentParser:
    d = StreamConfig()
    p = argparse.ArgumentParser(prog="streaming_app.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--available-now", action="store_true", help="process what the topics hold, then exit")
    p.add_argument("--trigger-seconds", type=float, help=f"micro-batch interval (default {d.trigger_seconds:g})")
    p.add_argument("--watermark", help=f"event-time watermark delay (default '{d.watermark}')")
    p.add_argument("--starting-offsets", choices=["earliest", "latest"],
                   help=f"where a query without checkpoint starts (default {d.starting_offsets})")
    p.add_argument("--max-offsets-per-trigger", type=int, help="rate limit: records per micro-batch and query")
    p.add_argument("--no-fail-on-data-loss", action="store_true",
                   help="when offsets vanished (retention, recreated topic), continue from the earliest "
                        "available offset instead of failing")
    p.add_argument("--source-format", choices=["kafka", "eventflow_kafka"],
                   help="'kafka': Spark's own Kafka connector (fetched from Maven Central on first use); "
                        f"'eventflow_kafka': EventFlow's Python source (default {d.source_format})")
    p.add_argument("--checkpoint-dir", help="default: EVENTFLOW_CHECKPOINT_LOCATION, else $EVENTFLOW_HOME/checkpoints")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    logging.getLogger("eventflow.kafka").propagate = False  # librdkafka retries; failures become one error
    try:
        settings = Settings.from_env()
        endpoints = resolve_endpoints(settings)
        check_java()
        apply_schema(endpoints.postgres_url)
        provision_topics(endpoints.kafka_config())
        config = StreamConfig(available_now=args.available_now).with_overrides(
            trigger_seconds=args.trigger_seconds, watermark=args.watermark, starting_offsets=args.starting_offsets,
            max_offsets_per_trigger=args.max_offsets_per_trigger, source_format=args.source_format,
            fail_on_data_loss=False if args.no_fail_on_data_loss else None)
        from pathlib import Path

        from eventflow_assets.processing.runner import run_streaming
        from eventflow_assets.processing.spark import build_spark_session

        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        spark = build_spark_session("eventflow-streaming")
        try:
            run_streaming(spark, endpoints, Path(args.checkpoint_dir or settings.checkpoints), config, stop)
        finally:
            spark.stop()
        return 0
    except EventFlowError as exc:
        print(f"streaming_app: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
