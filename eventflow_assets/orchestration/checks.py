"""Asset checks on the streaming sink tables; their SQL is in sql/checks/.

A failing check's metadata says where: the first windows, currencies, users or order ids that
differ, or the most frequent reject reasons.
"""

from datetime import datetime, timedelta, timezone

import dagster as dg

from eventflow_assets.orchestration.assets.tables import SINK_TABLES, table_key
from eventflow_assets.orchestration.probes import newest_record_before
from eventflow_assets.orchestration.resources import EventFlowEndpoints
from eventflow_assets.storage.postgres import connect, read_sql
from eventflow_assets.storage.schema import apply_schema
from eventflow_assets.storage.tables import FUNNEL, ORDERS_RAW, REJECTED, REVENUE

FRESHNESS = timedelta(minutes=5)
GRACE = timedelta(minutes=2)  # time the stream gets to pick a record up (a start, Spark's, a trigger)
CLOCK_SLACK = timedelta(seconds=30)
MAX_REJECTED_RATIO = 0.05


def _query(eventflow: EventFlowEndpoints, name: str) -> list[tuple]:
    url = eventflow.endpoints().postgres_url
    apply_schema(url)  # idempotent; a check may be the first thing to touch a new database
    with connect(url) as conn:
        return conn.execute(read_sql(f"checks/{name}.sql")).fetchall()


def _agreement(eventflow: EventFlowEndpoints, sql_name: str, unit: str) -> dg.AssetCheckResult:
    ((horizon, compared, differing, first),) = _query(eventflow, sql_name)
    if horizon is None:
        return dg.AssetCheckResult(passed=True, description="no window is final yet (no watermark recorded)",
                                   metadata={"compared": 0})
    metadata = {"finalized_through": dg.MetadataValue.timestamp(horizon), "compared": compared,
                "differing": differing}
    if differing:
        metadata["first_differences"] = dg.MetadataValue.json(first)
        return dg.AssetCheckResult(passed=False, metadata=metadata,
                                   description=f"{differing} of {compared} finalized {unit} differ from orders_raw")
    return dg.AssetCheckResult(passed=True, metadata=metadata,
                               description=f"{compared} finalized {unit} agree with orders_raw")


@dg.asset_check(asset=table_key(REVENUE), name="agrees_with_orders_raw",
                description="Per finalized window and currency, total revenue and order count equal "
                            "orders_raw's sum and count.")
def revenue_agrees_with_orders_raw(eventflow: EventFlowEndpoints) -> dg.AssetCheckResult:
    return _agreement(eventflow, "revenue_matches_orders", "(window, currency) pairs")


@dg.asset_check(asset=table_key(FUNNEL), name="agrees_with_orders_raw",
                description="Per finalized window and user, the order count equals orders_raw's.")
def funnel_agrees_with_orders_raw(eventflow: EventFlowEndpoints) -> dg.AssetCheckResult:
    return _agreement(eventflow, "funnel_matches_orders", "(window, user) pairs")


@dg.asset_check(asset=table_key(ORDERS_RAW), name="no_duplicate_order_ids",
                description="count(DISTINCT order_id) = count(*): the stream's deduplication held.")
def no_duplicate_order_ids(eventflow: EventFlowEndpoints) -> dg.AssetCheckResult:
    ((rows, distinct, first),) = _query(eventflow, "duplicate_order_ids")
    metadata = {"order_rows": rows, "distinct_order_ids": distinct}
    if rows != distinct:
        metadata["first_duplicates"] = dg.MetadataValue.json(first)
    return dg.AssetCheckResult(passed=rows == distinct, metadata=metadata,
                               description=f"{rows - distinct} duplicate rows" if rows != distinct else None)


def freshness_check(table: str) -> dg.AssetChecksDefinition:
    topics, _ = SINK_TABLES[table]
    minutes, grace = FRESHNESS.total_seconds() / 60, GRACE.total_seconds() / 60

    @dg.asset_check(asset=table_key(table), name="fresh_while_events_arrive",
                    description=f"Records that reached {', '.join(topics)} between {minutes:g} and {grace:g} minutes "
                                f"ago are reflected: `{table}` was written at or after the newest of them.")
    def _fresh(eventflow: EventFlowEndpoints) -> dg.AssetCheckResult:
        now = datetime.now(timezone.utc)
        arrived = newest_record_before(eventflow.endpoints().kafka_config(), topics, now - GRACE)
        latest, age_s = next((latest, age) for name, latest, age in _query(eventflow, "latest_writes")
                             if name == table)
        metadata = {"last_write": dg.MetadataValue.timestamp(latest) if latest else "never"}
        if arrived is None or arrived < now - FRESHNESS:
            return dg.AssetCheckResult(
                passed=True, metadata=metadata, severity=dg.AssetCheckSeverity.WARN,
                description=f"no records arrived between {minutes:g} and {grace:g} minutes ago: nothing to judge")
        metadata["record_arrived"] = dg.MetadataValue.timestamp(arrived)
        metadata["last_write_age_s"] = round(age_s, 1) if age_s is not None else -1.0
        # Ages, not timestamps, so that the broker's and the database's clocks need not agree.
        fresh = age_s is not None and age_s <= (now - arrived).total_seconds() + CLOCK_SLACK.total_seconds()
        return dg.AssetCheckResult(
            passed=fresh, metadata=metadata, severity=dg.AssetCheckSeverity.WARN,
            description=None if fresh else
            f"a record arrived {(now - arrived).total_seconds() / 60:.1f} minutes ago but `{table}` was last "
            f"written {'never' if latest is None else f'{age_s / 60:.1f} minutes ago'}: is streaming_job running?")

    return _fresh


@dg.asset_check(asset=table_key(REJECTED), name="rejected_rate_below_5_percent",
                description="Less than 5% of the records read in the last hour were rejected.")
def rejected_rate_below_threshold(eventflow: EventFlowEndpoints) -> dg.AssetCheckResult:
    ((rejected, records),) = _query(eventflow, "rejected_rate")
    ratio = rejected / records if records else 0.0
    metadata = {"rejected_last_hour": rejected, "records_last_hour": records, "rejected_ratio": round(ratio, 5)}
    passed = ratio < MAX_REJECTED_RATIO
    if not passed:
        metadata["top_reasons"] = dg.MetadataValue.json(
            [{"topic": t, "reason": r, "records": n} for t, r, n in _query(eventflow, "rejected_reasons")])
    return dg.AssetCheckResult(
        passed=passed, metadata=metadata, severity=dg.AssetCheckSeverity.WARN,
        description=f"{ratio:.1%} of {records} records rejected in the last hour" if records else
        "no records read in the last hour")


sink_checks = [
    revenue_agrees_with_orders_raw,
    funnel_agrees_with_orders_raw,
    no_duplicate_order_ids,
    *(freshness_check(t) for t in (ORDERS_RAW, REVENUE, FUNNEL)),
    rejected_rate_below_threshold,
]
