"""The streaming queries: one per topic, so that every record is read and parsed once.

| query (= topic) | state (watermark on event time)      | one transaction per micro-batch writes                       |
|-----------------|--------------------------------------|--------------------------------------------------------------|
| orders          | dedup by order id within the watermark | orders_raw; revenue_by_currency_5min and the funnel's order counts, added from the orders new to orders_raw; rejects |
| product-view    | dedup by event id within the watermark | the funnel's view counts, added per (window, user); rejects   |
| user-events     | none                                  | rejects                                                      |

The three queries of the design (raw orders, 5-minute revenue by currency, the per-user view/order
funnel) are all here, computed from these two deduplicated streams: a window's revenue is the
sum of its orders' partial sums over the batches that carried them, which is what Spark's
update-mode aggregation would hold, without a second parse and a second state store per
topic. Every table is written in the same transaction as the exactly-once ledger
(``processing/sinks.py``), so a replayed batch changes nothing.

A record older than its topic's watermark is dropped (Spark counts it; ``stream_progress``
records the count), so a late order is missing from all three order tables alike. Rejected
records travel through the same query with no event time (they cannot move the watermark or
be late) and a dedup key of their own Kafka position, so none is merged with another.

The transformations are pure DataFrame -> DataFrame functions; :func:`start_queries` wires
them to the Kafka source and the exactly-once sinks.
"""

from __future__ import annotations

import os
from datetime import timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from eventflow_assets.ingestion.events import ORDERS, PRODUCT_VIEW, TOPIC_NAMES, USER_EVENTS
from eventflow_assets.processing import sinks
from eventflow_assets.processing.config import StreamConfig
from eventflow_assets.processing.kafka_source import NAME as PYTHON_SOURCE
from eventflow_assets.processing.parsing import REJECT_COLUMNS, parse
from eventflow_assets.settings import Endpoints
from eventflow_assets.storage.tables import FUNNEL, ORDERS_RAW, REJECTED, REVENUE

QUERY_NAMES = TOPIC_NAMES  # one query per topic, named after it
QUERY_TABLES = {
    ORDERS: (ORDERS_RAW, REVENUE, FUNNEL, REJECTED),
    PRODUCT_VIEW: (FUNNEL, REJECTED),
    USER_EVENTS: (REJECTED,),
}


def read_topics(spark: SparkSession, endpoints: Endpoints, topics, config: StreamConfig) -> DataFrame:
    reader = (spark.readStream.format(config.source_format)
              .option("kafka.bootstrap.servers", endpoints.kafka_bootstrap_servers)
              .option("subscribe", ",".join(topics))
              .option("startingOffsets", config.starting_offsets)
              .option("failOnDataLoss", str(config.fail_on_data_loss).lower()))
    client = endpoints.kafka_properties if config.source_format == PYTHON_SOURCE else endpoints.jvm_kafka_properties()
    for key, value in client.items():
        reader = reader.option(f"kafka.{key}", value)
    if config.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(config.max_offsets_per_trigger))
    return reader.load()


def observed_parse(records: DataFrame, topic: str) -> DataFrame:
    """Parse one topic and publish valid/rejected counts in the query's progress (observedMetrics)."""
    parsed = parse(records, topic)
    return parsed.observe(f"parse:{topic}",
                          F.count(F.when(F.col("reject_reason").isNull(), 1)).alias("valid"),
                          F.count(F.when(F.col("reject_reason").isNotNull(), 1)).alias("rejected"))


def dedup(events: DataFrame, key: str) -> DataFrame:
    """Each ``key`` once within the (upstream) watermark; events older than the watermark dropped.

    On a batch DataFrame (tests, backfills) this is a plain ``dropDuplicates``.
    """
    return events.dropDuplicatesWithinWatermark([key]) if events.isStreaming else events.dropDuplicates([key])


def _reject_columns(is_valid) -> list:
    """The reject columns, NULL on valid rows (nothing to carry for them but their position).

    :func:`parse` already leaves ``record_key`` and ``payload`` NULL on valid rows.
    """
    kept = {"topic", "partition", "offset", "record_key", "payload"}
    return [F.col(c) if c in kept else F.when(~is_valid, F.col(c)).alias(c)
            for c in REJECT_COLUMNS if c != "reject_reason"] + [F.col("reject_reason").alias("reason")]


def window_start(event_time, window: timedelta):
    """The start of the epoch-aligned window holding ``event_time``; NULL for NULL.

    Not ``F.window``: it filters out rows whose time is NULL, and rejects carry NULL.
    """
    micros = F.unix_micros(event_time)
    return F.timestamp_micros(micros - F.pmod(micros, F.lit(window // timedelta(microseconds=1))))


def topic_rows(parsed: DataFrame, topic: str, watermark: str, window: timedelta) -> DataFrame:
    """What the topic's sink needs from :func:`parse`'s rows: valid events deduplicated by id within
    the watermark, with their 5-minute window, and every rejected record once.

    A rejected row gets no event time, so it neither moves the watermark nor is dropped as late,
    and its Kafka position as dedup key (its id may equal a valid event's).
    """
    is_valid = F.col("reject_reason").isNull()
    if topic == USER_EVENTS:  # valid user events feed no table: only the rejects are kept
        return parsed.where(~is_valid).select(*_reject_columns(is_valid))
    id_column = "order_id" if topic == ORDERS else "event_id"
    fields = ["order_id", "user_id", "product_id", "price", "currency"] if topic == ORDERS else ["user_id"]
    # Only what the sink needs crosses the dedup's shuffle (no payload for a valid row).
    keyed = parsed.select(
        *fields, F.when(is_valid, F.col("event_time")).alias("event_time"), *_reject_columns(is_valid),
        F.when(is_valid, F.col(id_column))
         .otherwise(F.concat_ws(":", F.lit("reject"), "partition", "offset")).alias("_dedup_key"))
    unique = dedup(keyed.withWatermark("event_time", watermark), "_dedup_key")
    start = window_start(F.col("event_time"), window)
    end = start + F.make_dt_interval(secs=F.lit(window.total_seconds()))
    times = [F.col("event_time").alias("timestamp")] if topic == ORDERS else []
    return unique.select(*fields, *times, start.alias("window_start"), end.alias("window_end"),
                         *[c for c in REJECT_COLUMNS if c != "reject_reason"], "reason")


def build_queries(spark: SparkSession, endpoints: Endpoints, config: StreamConfig) -> dict[str, DataFrame]:
    """{query name (= topic): streaming DataFrame}; nothing started yet."""
    return {topic: topic_rows(observed_parse(read_topics(spark, endpoints, [topic], config), topic), topic,
                              config.watermark, config.window)
            for topic in QUERY_NAMES}


def query_checkpoint(checkpoint_root: str | os.PathLike, query: str) -> str:
    """Where ``query`` keeps its checkpoint under the root: a local path or a URI Spark's file systems
    understand (``file:///``, ``hdfs://``, ``s3a://``), joined as a URI, never as a local path."""
    return f"{os.fspath(checkpoint_root).rstrip('/')}/{query}"


def start_queries(spark: SparkSession, endpoints: Endpoints, checkpoint_root: str | os.PathLike,
                  config: StreamConfig | None = None, only=QUERY_NAMES) -> dict[str, StreamingQuery]:
    config = config or StreamConfig()
    started: dict[str, StreamingQuery] = {}
    try:
        for name, frame in build_queries(spark, endpoints, config).items():
            if name not in only:
                continue
            writer = (frame.writeStream.queryName(name).outputMode("append")
                      .option("checkpointLocation", query_checkpoint(checkpoint_root, name))
                      .foreachBatch(sinks.ExactlyOnceSink(endpoints.postgres_url, name, sinks.SINKS[name],
                                                          endpoints.kafka_config(), config.fail_on_data_loss)))
            writer = (writer.trigger(availableNow=True) if config.available_now
                      else writer.trigger(processingTime=f"{config.trigger_seconds} seconds"))
            started[name] = writer.start()
    except BaseException:
        for query in started.values():
            query.stop()
        raise
    return started
