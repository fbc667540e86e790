"""Names of the tables the stream writes (CONTRACTS.md): imported wherever a table is named.

Light on purpose (no Spark, no Dagster): the CLI, the dashboard and the Dagster definitions
import it.
"""

ORDERS_RAW = "orders_raw"
REVENUE = "revenue_by_currency_5min"
FUNNEL = "conversion_funnel_5min"
REJECTED = "rejected_events"
SINK_TABLES = (ORDERS_RAW, REVENUE, FUNNEL, REJECTED)
