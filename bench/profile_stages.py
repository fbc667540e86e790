"""Where the stream's time goes per record: each stage of a query timed on its own, in batch mode.

    python bench/profile_stages.py [--events 500000]

Starts its own embedded Apache Kafka, publishes --events events (40/40/20), and in one warm
local[2] SparkSession (the stream's settings) times, over the `orders` topic, cumulative plans
written to Spark's `noop` sink, best of three runs each:

  read        Spark's Kafka connector: fetch and decode the records
  + text      the value as text, the strict one-JSON-value check (SHA-256 digest, wrapped parse)
  + parse     the whole parse: fields, types, range checks, reject reason (processing/parsing.py),
              once with every record through the full variant parse, once with the fast path
  + dedup     dropDuplicates by order id (batch mode: a shuffle, not the streaming state store)
  rows        what the orders query hands its sink: parse, dedup (valid orders by id, rejects
              by position), window start and end, reject columns (processing/queries.topic_rows)

and prints microseconds of wall time per record for each (two cores, so CPU is up to twice
that). The differences between lines are each stage's cost.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from pyspark.sql import functions as F

from eventflow_assets.ingestion.events import ORDERS
from eventflow_assets.ingestion.generator import EventGenerator
from eventflow_assets.ingestion.producer import produce
from eventflow_assets.ingestion.topics import provision_topics
from eventflow_assets.local.kafka_broker import EmbeddedKafka
from eventflow_assets.local.processes import free_port
from eventflow_assets.processing import parsing
from eventflow_assets.processing.queries import StreamConfig, topic_rows
from eventflow_assets.processing.spark import build_spark_session


def _best_of(runs: int, frame) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        frame.write.format("noop").mode("overwrite").save()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=500_000)
    args = parser.parse_args()
    broker = EmbeddedKafka(Path(tempfile.mkdtemp(prefix="eventflow-profile-")), free_port())
    broker.start()
    try:
        config = broker.client_config()
        provision_topics(config)
        stats = produce(config, EventGenerator(seed=3), count=args.events)
        spark = build_spark_session("eventflow-profile")
        raw = (spark.read.format("kafka").option("kafka.bootstrap.servers", broker.bootstrap_servers)
               .option("subscribe", ORDERS).option("startingOffsets", "earliest").load()).cache()
        orders = raw.count()
        raw.unpersist()
        raw = (spark.read.format("kafka").option("kafka.bootstrap.servers", broker.bootstrap_servers)
               .option("subscribe", ORDERS).option("startingOffsets", "earliest").load())
        text = raw.select(F.col("value").cast("string").alias("_text"), F.sha2(F.col("value"), 256).alias("_digest"))
        strict = text.select(F.try_parse_json(F.concat(F.lit("["), "_text", F.lit(',"'), "_digest", F.lit('"]')))
                             .alias("v"))
        parsed = parsing.parse(raw, ORDERS)
        valid = parsing.valid(parsed)
        cfg = StreamConfig()
        stages = [("read", raw), ("+ text, strict JSON check", strict),
                  ("+ parse, full path only", parsing.parse(raw, ORDERS, fast_path=False)),
                  ("+ parse (fast path)", parsed),
                  ("+ dedup by order id", valid.dropDuplicates(["order_id"])),
                  ("the orders query's rows", topic_rows(parsed, ORDERS, cfg.watermark, cfg.window))]
        print(f"{stats.delivered:,} events published, {orders:,} orders; wall time per order record, best of 3:")
        for name, frame in stages:
            seconds = _best_of(3, frame)
            print(f"  {name:<28} {seconds:6.2f} s  {seconds / orders * 1e6:7.2f} us/record")
        spark.stop()
    finally:
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
