"""The streaming sink tables as assets, downstream of the topics they are computed from.

They are written by the stream, not by a Dagster compute function, so they are plain
``AssetSpec``s (external assets). Wherever the stream runs (``streaming_job``, ``python
jobs/streaming_app.py``, its own container, ``spark-submit``), it records every micro-batch in
``stream_progress``; the ``sink_table_materializations`` sensor reports each table's
``AssetMaterialization`` from there, at most once a minute (``orchestration/sensors/materializations.py``).
"""

import dagster as dg

from eventflow_assets.dashboard.sections import table_link
from eventflow_assets.ingestion.events import ORDERS, PRODUCT_VIEW, TOPIC_NAMES, WATERMARK_LABEL, WINDOW_LABEL
from eventflow_assets.orchestration.assets.keys import table_key, topic_key
from eventflow_assets.orchestration.catalog import STORAGE
from eventflow_assets.storage.columns import table_columns
from eventflow_assets.storage.tables import CURRENCY_RATES, FUNNEL, ORDERS_RAW, REJECTED, REVENUE


def column_schema(table: str) -> dg.TableSchema:
    """``dagster/column_schema`` of a PostgreSQL table: its columns, types, nullability, CHECK and DEFAULT
    clauses and primary key as the migrations declare them (storage/columns.py)."""
    declared = table_columns(table)
    columns = [dg.TableColumn(c.name, c.type, description=c.description, constraints=dg.TableColumnConstraints(
        nullable=c.nullable, unique=c.unique, other=list(c.other))) for c in declared.columns]
    key = [f"PRIMARY KEY ({', '.join(declared.primary_key)})"] if declared.primary_key else []
    return dg.TableSchema(columns=columns, constraints=dg.TableConstraints(other=key))


def table_metadata(table: str) -> dict:
    """A table asset's definition metadata: its name, its columns (from the migrations), and the dashboard
    section that shows it."""
    link = table_link(table)
    return {"dagster/table_name": table, "dagster/column_schema": column_schema(table),
            **({"dashboard": dg.MetadataValue.url(link)} if link else {})}


# Table -> (topics it is computed from, description).
SINK_TABLES = {
    ORDERS_RAW: ((ORDERS,), f"Every valid order once (deduplicated by order id within the {WATERMARK_LABEL} "
                              "watermark); late orders are dropped and counted in stream_progress."),
    REVENUE: ((ORDERS,), f"Revenue and order count per {WINDOW_LABEL} event-time window and currency. "
                           "A window is final once its end is at or before the orders query's watermark."),
    FUNNEL: ((PRODUCT_VIEW, ORDERS), f"Product views and orders per {WINDOW_LABEL} window and user."),
    REJECTED: (TOPIC_NAMES, "Records of any topic that break the event contract, with the reason, "
                              "keyed by their Kafka position."),
}

table_assets = [
    dg.AssetSpec(table_key(table), deps=[topic_key(t) for t in topics], group_name=STORAGE, kinds={"postgres"},
                 description=f"PostgreSQL table `{table}`, written by the stream (`streaming_job` or "
                             f"`jobs/streaming_app.py`); materializations reported from `stream_progress` by "
                             f"the sink_table_materializations sensor. {about}",
                 metadata=table_metadata(table))
    for table, (topics, about) in SINK_TABLES.items()
]

# Reference data, seeded by migration 0001; the analyses add amounts across currencies with it.
currency_rates = dg.AssetSpec(
    table_key(CURRENCY_RATES), group_name=STORAGE, kinds={"postgres"}, metadata=table_metadata(CURRENCY_RATES),
    description="PostgreSQL table `currency_rates`: the USD rate of each currency (seeded by the schema "
                "migrations), used wherever amounts in different currencies are added up.")
