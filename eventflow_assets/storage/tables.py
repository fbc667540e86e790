"""Names of the tables the stream writes (docs/contracts.md): imported wherever a table is named.

Light on purpose (no Spark, no Dagster): the CLI, the dashboard and the Dagster definitions
import it.
"""

ORDERS_RAW = "orders_raw"
REVENUE = "revenue_by_currency_5min"
FUNNEL = "conversion_funnel_5min"
REJECTED = "rejected_events"
SINK_TABLES = (ORDERS_RAW, REVENUE, FUNNEL, REJECTED)
# Reference data (migration 0001): the USD rate of each currency.
CURRENCY_RATES = "currency_rates"
# The days of orders_raw archived to files, or on their way (storage/partitions.py).
ORDERS_ARCHIVE = "orders_raw_archive"
# The stream's own record: the sinks' exactly-once ledger and the per-batch progress.
STREAM_BATCHES = "stream_batches"
STREAM_PROGRESS = "stream_progress"
# The id of each topic a checkpoint reads (processing/sinks.py: topics recreated under it). Keyed
# by the checkpoint's id, so rows of checkpoints that are gone do no harm.
STREAM_TOPICS = "stream_topics"
STREAM_LEDGER = (STREAM_BATCHES, STREAM_PROGRESS, STREAM_TOPICS)
# What the batch analytics write (sql/migrations/0002_analytics.sql).
TOP_REVENUE_TABLE = "analytics_top_revenue_by_currency"
CONVERSION_TABLE = "analytics_conversion_rates"
SEGMENTS_TABLE = "analytics_user_segments"
SUMMARY_TABLE = "analytics_segment_summary"
TRENDS_TABLES = {"five_min": "analytics_revenue_trends", "hourly": "analytics_revenue_trends_hourly",
                 "daily": "analytics_revenue_trends_daily", "usd": "analytics_revenue_trends_usd"}
ANALYTICS_TABLES = (TOP_REVENUE_TABLE, CONVERSION_TABLE, *TRENDS_TABLES.values(), SEGMENTS_TABLE, SUMMARY_TABLE)
