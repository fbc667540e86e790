"""The analyses and the tables they write, without Spark: the command-line parsers and the Dagster
assets name them before (or without) starting a SparkSession. The tables' names have their home
with the other tables' (storage/tables.py) and are re-exported here beside the analyses."""

from eventflow_assets.storage.tables import (  # noqa: F401
    CONVERSION_TABLE,
    SEGMENTS_TABLE,
    SUMMARY_TABLE,
    TOP_REVENUE_TABLE,
    TRENDS_TABLES,
)

TOP_REVENUE = "top_revenue_by_currency"
CONVERSION = "conversion_rates"
TRENDS = "revenue_trends"
SEGMENTS = "user_segments"
ANALYSES = (TOP_REVENUE, CONVERSION, TRENDS, SEGMENTS)
