"""Names of the tables the stream writes (CONTRACTS.md): imported wherever a table is named.

Light on purpose (no Spark, no Dagster): the CLI, the dashboard and the Dagster definitions
import it.
"""

ORDERS_RAW = "orders_raw"
REVENUE = "revenue_by_currency_5min"
FUNNEL = "conversion_funnel_5min"
REJECTED = "rejected_events"
SINK_TABLES = (ORDERS_RAW, REVENUE, FUNNEL, REJECTED)
# The stream's own record: the sinks' exactly-once ledger and the per-batch progress.
STREAM_BATCHES = "stream_batches"
STREAM_PROGRESS = "stream_progress"
# The id of each topic a checkpoint reads (processing/sinks.py: topics recreated under it). Keyed
# by the checkpoint's id, so rows of checkpoints that are gone do no harm.
STREAM_TOPICS = "stream_topics"
STREAM_LEDGER = (STREAM_BATCHES, STREAM_PROGRESS, STREAM_TOPICS)
# What the batch analytics write (sql/migrations/0002_analytics.sql).
ANALYTICS_TABLES = (
    "analytics_top_revenue_by_currency", "analytics_conversion_rates", "analytics_revenue_trends",
    "analytics_revenue_trends_hourly", "analytics_revenue_trends_daily", "analytics_revenue_trends_usd",
    "analytics_user_segments", "analytics_segment_summary",
)
