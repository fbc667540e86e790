"""The analyses and the tables they write, without Spark: the command-line parsers and the Dagster
assets name them before (or without) starting a SparkSession."""

TOP_REVENUE = "top_revenue_by_currency"
CONVERSION = "conversion_rates"
TRENDS = "revenue_trends"
SEGMENTS = "user_segments"
ANALYSES = (TOP_REVENUE, CONVERSION, TRENDS, SEGMENTS)

TOP_REVENUE_TABLE = "analytics_top_revenue_by_currency"
CONVERSION_TABLE = "analytics_conversion_rates"
SEGMENTS_TABLE = "analytics_user_segments"
SUMMARY_TABLE = "analytics_segment_summary"
TRENDS_TABLES = {"five_min": "analytics_revenue_trends", "hourly": "analytics_revenue_trends_hourly",
                 "daily": "analytics_revenue_trends_daily", "usd": "analytics_revenue_trends_usd"}
