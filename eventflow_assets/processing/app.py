"""The streaming job: one query per topic into PostgreSQL (docs/streaming.md).

Runs until SIGTERM/Ctrl-C (each query stops after its current batch commits), or with
--available-now processes what the topics hold and exits. Kafka and PostgreSQL come from
EVENTFLOW_* variables, else from the running `eventflow up` / `eventflow services`.
Shared by `eventflow stream` and `jobs/streaming_app.py` (which spark-submit runs).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from eventflow_assets.local.logs import service_log
from eventflow_assets.processing.config import StreamConfig
from eventflow_assets.settings import Settings

EXAMPLES = """examples:
  {prog}   # stream until Ctrl-C
  {prog} --available-now   # process what the topics hold, then exit
  {prog} --max-offsets-per-trigger 50000 --trigger-seconds 5
  spark-submit --master spark://127.0.0.1:7077 jobs/streaming_app.py
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = StreamConfig()
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
    p.add_argument("--checkpoint-dir", help="a local path or a URI Spark understands (file:///..., hdfs://..., "
                                              "s3a://...); default: EVENTFLOW_CHECKPOINT_LOCATION, else "
                                              "$EVENTFLOW_HOME/checkpoints")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Provision what the stream needs, then stream; raises EventFlowError with a one-line message."""
    from eventflow_assets.ingestion.topics import provision_topics
    from eventflow_assets.local.stack import resolve_endpoints
    from eventflow_assets.processing.java import check_java
    from eventflow_assets.storage.schema import apply_schema

    logging.getLogger("eventflow.kafka").propagate = False  # librdkafka retries; failures become one error
    endpoints = resolve_endpoints(settings)
    check_java()
    apply_schema(endpoints.postgres_url)
    provision_topics(endpoints.kafka_config())
    config = StreamConfig(available_now=args.available_now).with_overrides(
        trigger_seconds=args.trigger_seconds, watermark=args.watermark, starting_offsets=args.starting_offsets,
        max_offsets_per_trigger=args.max_offsets_per_trigger, source_format=args.source_format,
        fail_on_data_loss=False if args.no_fail_on_data_loss else None)
    from eventflow_assets.processing.runner import run_streaming
    from eventflow_assets.processing.spark import STREAM_APP, build_spark_session, stream_jvm_conf

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with service_log(settings.home, "stream"):
        spark = build_spark_session(STREAM_APP, conf=stream_jvm_conf())
        try:
            run_streaming(spark, endpoints, args.checkpoint_dir or settings.checkpoints, config, stop)
        finally:
            spark.stop()
    return 0
