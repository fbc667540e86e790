"""The seed's three streaming queries, plus one that keeps every rejected record.

| query                      | reads                 | state (watermark on event time)          | sink                      |
|----------------------------|-----------------------|------------------------------------------|---------------------------|
| orders_raw                 | orders                | dedup by order id                         | orders_raw (append)       |
| revenue_by_currency_5min   | orders                | dedup by order id; window x currency sum | upsert (update mode)      |
| conversion_funnel_5min     | product-view, orders  | dedup by event id; window x user counts  | upsert (update mode)      |
| rejected_events            | all three topics      | none                                      | rejected_events           |

Every query drops events older than its watermark (Spark counts them; ``stream_progress``
records the count), so a late order is missing from all three tables alike. Deduplication by
id within the watermark makes a repeated order (a producer retry upstream) count once in every
table. Q3 cannot be Spark's full outer join of two streaming aggregations (not supported in
update mode); a union of views and orders with conditional counts gives the same rows, which
a test checks against a batch full outer join.

The transformations are pure DataFrame -> DataFrame functions; :func:`start_queries` wires
them to the Kafka source and the exactly-once sinks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from eventflow_assets.ingestion.events import ORDERS, PRODUCT_VIEW, TOPIC_NAMES
from eventflow_assets.local.stack import Endpoints
from eventflow_assets.processing import sinks
from eventflow_assets.processing.kafka_source import NAME as PYTHON_SOURCE
from eventflow_assets.processing.parsing import parse, rejected, valid

Q_ORDERS_RAW = "orders_raw"
Q_REVENUE = "revenue_by_currency_5min"
Q_FUNNEL = "conversion_funnel_5min"
Q_REJECTED = "rejected_events"
QUERY_NAMES = (Q_ORDERS_RAW, Q_REVENUE, Q_FUNNEL, Q_REJECTED)


@dataclass(frozen=True)
class StreamConfig:
    trigger_seconds: float = 10.0
    watermark: str = "10 minutes"
    window: str = "5 minutes"
    # The seed reads from "latest"; we start from "earliest" so a first start loses nothing
    # the topics already hold. Restarts resume from the checkpoint either way.
    starting_offsets: str = "earliest"
    max_offsets_per_trigger: int | None = None
    fail_on_data_loss: bool = True
    # Spark's own Kafka connector; "eventflow_kafka" is EventFlow's Python source (same options,
    # same schema), which speaks librdkafka's property names.
    source_format: str = "kafka"
    available_now: bool = False

    def with_overrides(self, **changes) -> StreamConfig:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


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
    parsed = parse(records.where(F.col("topic") == topic), topic)
    return parsed.observe(f"parse:{topic}",
                          F.count(F.when(F.col("reject_reason").isNull(), 1)).alias("valid"),
                          F.count(F.when(F.col("reject_reason").isNotNull(), 1)).alias("rejected"))


def dedup(events: DataFrame, key: str) -> DataFrame:
    """Each ``key`` once within the (upstream) watermark; events older than the watermark dropped.

    On a batch DataFrame (tests, backfills) this is a plain ``dropDuplicates``.
    """
    return events.dropDuplicatesWithinWatermark([key]) if events.isStreaming else events.dropDuplicates([key])


def unique_orders(orders: DataFrame, watermark: str) -> DataFrame:
    return dedup(orders.withWatermark("event_time", watermark), "order_id")


def orders_raw_rows(orders: DataFrame, watermark: str) -> DataFrame:
    return unique_orders(orders, watermark).select(
        "order_id", "user_id", "product_id", "price", "currency", F.col("event_time").alias("timestamp"),
        F.col("partition").alias("kafka_partition"), F.col("offset").alias("kafka_offset"))


def revenue_by_currency(orders: DataFrame, watermark: str, window: str) -> DataFrame:
    agg = (unique_orders(orders, watermark)
           .groupBy(F.window("event_time", window).alias("w"), "currency")
           .agg(F.sum("price").alias("total_revenue"), F.count(F.lit(1)).alias("order_count")))
    return agg.select(
        F.col("w.start").alias("window_start"), F.col("w.end").alias("window_end"), "currency",
        F.col("total_revenue").cast("decimal(16,2)").alias("total_revenue"), "order_count",
        F.round(F.col("total_revenue") / F.col("order_count"), 2).cast("decimal(16,2)").alias("avg_order_value"))


def conversion_funnel(views: DataFrame, orders: DataFrame, watermark: str, window: str) -> DataFrame:
    """Per (window, user): views and orders, each event id once.

    The watermark is set on each input before the union, so the query's watermark is the
    minimum of the two (Spark's default policy): when one topic lags behind the other in
    event time, for instance while a rate-limited backlog drains, its events are not dropped
    as late because the other topic's time has moved on.
    """
    views = views.withWatermark("event_time", watermark)
    orders = orders.withWatermark("event_time", watermark)
    events = views.select(F.concat(F.lit("view:"), "event_id").alias("dedup_id"), "user_id", "event_time",
                          F.lit(1).alias("is_view"), F.lit(0).alias("is_order")).unionByName(
        orders.select(F.concat(F.lit("order:"), "order_id").alias("dedup_id"), "user_id", "event_time",
                      F.lit(0).alias("is_view"), F.lit(1).alias("is_order")))
    agg = (dedup(events, "dedup_id")
           .groupBy(F.window("event_time", window).alias("w"), "user_id")
           .agg(F.sum("is_view").cast("long").alias("view_count"), F.sum("is_order").cast("long").alias("order_count")))
    return agg.select(F.col("w.start").alias("window_start"), F.col("w.end").alias("window_end"), "user_id",
                      "view_count", "order_count")


def all_rejected(per_topic: dict[str, DataFrame]) -> DataFrame:
    parts = [rejected(observed_parse(records, topic)) for topic, records in per_topic.items()]
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out.withColumnRenamed("reject_reason", "reason")


def build_queries(spark: SparkSession, endpoints: Endpoints, config: StreamConfig) -> dict[str, tuple]:
    """{query name: (streaming DataFrame, output mode, sink spec)}; nothing started yet.

    Each branch reads its own topic: a union of branches filtering one multi-topic source
    would scan that source once per branch.
    """
    def source(topic: str) -> DataFrame:
        return read_topics(spark, endpoints, [topic], config)

    def events(topic: str) -> DataFrame:
        return valid(observed_parse(source(topic), topic))

    return {
        Q_ORDERS_RAW: (orders_raw_rows(events(ORDERS), config.watermark), "append", sinks.ORDERS_RAW),
        Q_REVENUE: (revenue_by_currency(events(ORDERS), config.watermark, config.window), "update", sinks.REVENUE),
        Q_FUNNEL: (conversion_funnel(events(PRODUCT_VIEW), events(ORDERS), config.watermark, config.window),
                   "update", sinks.FUNNEL),
        Q_REJECTED: (all_rejected({t: source(t) for t in TOPIC_NAMES}), "append", sinks.REJECTED),
    }


def start_queries(spark: SparkSession, endpoints: Endpoints, checkpoint_root: Path,
                  config: StreamConfig = StreamConfig(), only=QUERY_NAMES) -> dict[str, StreamingQuery]:
    started: dict[str, StreamingQuery] = {}
    try:
        for name, (frame, mode, spec) in build_queries(spark, endpoints, config).items():
            if name not in only:
                continue
            writer = (frame.writeStream.queryName(name).outputMode(mode)
                      .option("checkpointLocation", str(checkpoint_root / name))
                      .foreachBatch(sinks.ExactlyOnceSink(endpoints.postgres_url, name, spec, checkpoint_root / name)))
            writer = (writer.trigger(availableNow=True) if config.available_now
                      else writer.trigger(processingTime=f"{config.trigger_seconds} seconds"))
            started[name] = writer.start()
    except BaseException:
        for query in started.values():
            query.stop()
        raise
    return started
