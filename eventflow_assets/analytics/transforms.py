"""The four batch analyses as pure DataFrame -> DataFrame functions.

Inputs have the streaming tables' columns (``rates`` is ``currency_rates``). Arithmetic stays in
decimals and is exact until the output, where each amount is rounded once, HALF UP to 2 decimals
(Spark's ``round`` on decimals is HALF UP; ``bround`` would be HALF EVEN). The casts matter:
Spark shortens a decimal result's scale when its precision would pass 38, and an amount rounded
first to 6 or 7 decimals, then to 2, can round differently from the exact value. So money is
cast to decimal(20,2) and counts to decimal(18,0) before they are multiplied or divided.
"""

from __future__ import annotations

from functools import reduce
from typing import NamedTuple

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

MONEY = "decimal(20,2)"
RATE = "decimal(12,6)"
COUNT = "decimal(18,0)"
SEGMENTS = ("VIP", "Premium", "Regular", "New")
VIP_ABOVE_USD = 1000
PREMIUM_ABOVE_USD = 500
GRANULARITIES = {"5min": 300, "hour": 3600, "day": 86400}


def _round_money(amount: Column) -> Column:
    return F.round(amount, 2).cast(MONEY)


def _rates(rates: DataFrame) -> DataFrame:
    return rates.select("currency", F.col("usd_rate").cast(RATE).alias("usd_rate"))


def _period_start(ts: str, seconds: int) -> Column:
    """The UTC period of ``seconds`` that contains ``ts``, whatever the session time zone."""
    epoch = F.unix_seconds(F.col(ts))
    return F.timestamp_seconds(epoch - F.pmod(epoch, F.lit(seconds)))


def top_revenue_by_currency(revenue_5min: DataFrame, rates: DataFrame) -> DataFrame:
    """Analysis 1: per currency, the sums of the windows' totals and order counts.

    avg_order_value = total_revenue / total_orders. The seed averaged the windows' averages,
    which weighs a 1-order window like a 1,000-order one; the windows' averages are not read.
    """
    totals = revenue_5min.groupBy("currency").agg(
        F.sum(F.col("total_revenue").cast(MONEY)).cast(MONEY).alias("total_revenue"),
        F.sum("order_count").cast("bigint").alias("total_orders"))
    return totals.join(_rates(rates), "currency", "left").select(
        "currency", "total_revenue", "total_orders",
        F.when(F.col("total_orders") > 0,
               _round_money(F.col("total_revenue") / F.col("total_orders").cast(COUNT))).alias("avg_order_value"),
        _round_money(F.col("total_revenue") * F.col("usd_rate")).alias("total_revenue_usd"))


def conversion_rates(funnel_5min: DataFrame) -> DataFrame:
    """Analysis 2: per user over all windows, orders / views x 100; NULL when there were no views."""
    totals = funnel_5min.groupBy("user_id").agg(
        F.sum("view_count").cast("bigint").alias("view_count"),
        F.sum("order_count").cast("bigint").alias("order_count"))
    rate = (F.col("order_count") * 100).cast(COUNT) / F.col("view_count").cast(COUNT)
    return totals.select("user_id", "view_count", "order_count",
                         F.when(F.col("view_count") > 0, _round_money(rate)).alias("conversion_rate"))


class RevenueTrends(NamedTuple):
    five_min: DataFrame
    hourly: DataFrame
    daily: DataFrame
    usd: DataFrame


def revenue_trends(revenue_5min: DataFrame, rates: DataFrame) -> RevenueTrends:
    """Analysis 3: the windows per currency, hourly and daily (UTC) rollups, and USD totals across currencies.

    Rollups add the windows' exact totals; a USD amount is the exact sum times the rate, rounded
    once. Currencies without a rate have NULL USD amounts and are left out of the USD totals
    (NULL when no currency of the period has a rate).
    """
    base = revenue_5min.join(_rates(rates), "currency", "left").select(
        "window_start", "window_end", "currency",
        F.col("total_revenue").cast(MONEY).alias("total_revenue"),
        F.col("order_count").cast("bigint").alias("order_count"),
        "usd_rate")
    five_min = base.select("window_start", "window_end", "currency", "total_revenue", "order_count",
                           _round_money(F.col("total_revenue") * F.col("usd_rate")).alias("total_revenue_usd"))

    def rollup(seconds: int) -> DataFrame:
        return (base.withColumn("period_start", _period_start("window_start", seconds))
                .groupBy("period_start", "currency", "usd_rate")
                .agg(F.sum("total_revenue").cast(MONEY).alias("total_revenue"),
                     F.sum("order_count").cast("bigint").alias("order_count"))
                .select("period_start", "currency", "total_revenue", "order_count",
                        _round_money(F.col("total_revenue") * F.col("usd_rate")).alias("total_revenue_usd")))

    usd_parts = [
        base.groupBy(_period_start("window_start", seconds).alias("period_start"))
        .agg(_round_money(F.sum(F.col("total_revenue") * F.col("usd_rate"))).alias("total_revenue_usd"),
             F.sum("order_count").cast("bigint").alias("order_count"))
        .select(F.lit(name).alias("granularity"), "period_start", "total_revenue_usd", "order_count")
        for name, seconds in GRANULARITIES.items()]
    return RevenueTrends(five_min, rollup(GRANULARITIES["hour"]), rollup(GRANULARITIES["day"]),
                         reduce(DataFrame.unionByName, usd_parts))


def user_segments(orders_raw: DataFrame, rates: DataFrame) -> DataFrame:
    """Analysis 4: each user's USD spend over all orders, and its segment.

    The thresholds compare the spend as output (rounded to the cent), so the segment always
    agrees with the amount shown: 1000.0044 USD is 1000.00 and Premium, not VIP.
    """
    spend = F.col("price").cast(MONEY) * F.col("usd_rate")
    per_user = orders_raw.join(_rates(rates), "currency", "left").groupBy("user_id").agg(
        _round_money(F.sum(spend)).alias("total_spend_usd"),
        F.count(F.lit(1)).cast("bigint").alias("order_count"))
    segment = (F.when(F.col("total_spend_usd") > VIP_ABOVE_USD, "VIP")
               .when(F.col("total_spend_usd") > PREMIUM_ABOVE_USD, "Premium")
               .when(F.col("order_count") == 1, "New")
               .otherwise("Regular"))
    return per_user.select("user_id", segment.alias("segment"), "total_spend_usd", "order_count")


def segment_summary(segments: DataFrame) -> DataFrame:
    """Per segment (all four, empty ones with zeros): users, revenue (sum of the users' rounded
    spends, so it adds up to the per-user table), average spend per user and orders."""
    totals = segments.groupBy("segment").agg(
        F.count(F.lit(1)).alias("users"),
        F.sum("total_spend_usd").alias("revenue_usd"),
        F.sum("order_count").alias("orders"))
    names = segments.sparkSession.createDataFrame([(s,) for s in SEGMENTS], "segment string")
    users = F.coalesce(F.col("users"), F.lit(0)).cast("bigint")
    revenue = F.coalesce(F.col("revenue_usd"), F.lit(0)).cast(MONEY)
    return names.join(totals, "segment", "left").select(
        "segment", users.alias("users"), revenue.alias("revenue_usd"),
        F.when(users > 0, _round_money(revenue / users.cast(COUNT))).alias("avg_spend_usd"),
        F.coalesce(F.col("orders"), F.lit(0)).cast("bigint").alias("orders"))
