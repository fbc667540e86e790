-- EventFlow analytics outputs: what jobs/batch_analytics_app.py (and the Dagster analytics
-- assets) compute from the streaming tables. Each run replaces a table's content, or for the
-- revenue trends a time range of it, in one transaction: readers see the old rows or the new
-- ones, never half of a run.
--
-- Money: numeric(20, 2). Sums are exact (numeric end to end); an amount is rounded once, ROUND
-- HALF UP to 2 decimals, when it is written. USD amounts are amount x currency_rates.usd_rate
-- computed exactly, then rounded. A currency with no rate has NULL USD amounts and is left out
-- of USD totals across currencies (the run warns about it).
-- computed_at: the start of the transaction that wrote the row.

-- Analysis 1. avg_order_value is the true average, total_revenue / total_orders. The seed's
-- avg(avg_order_value) over 5-minute windows weighs a window of 1 order like one of 1,000 and is
-- biased; the windows' own averages are not used.
CREATE TABLE analytics_top_revenue_by_currency (
    currency          text PRIMARY KEY,
    total_revenue     numeric(20, 2) NOT NULL,
    total_orders      bigint NOT NULL,
    avg_order_value   numeric(20, 2),
    total_revenue_usd numeric(20, 2),
    computed_at       timestamptz NOT NULL DEFAULT now()
);

-- Analysis 2. Over all windows of conversion_funnel_5min: conversion_rate = order_count /
-- view_count x 100 (a percentage, may exceed 100), NULL when the user has no views.
CREATE TABLE analytics_conversion_rates (
    user_id         text PRIMARY KEY,
    view_count      bigint NOT NULL,
    order_count     bigint NOT NULL,
    conversion_rate numeric(20, 2),
    computed_at     timestamptz NOT NULL DEFAULT now()
);

-- Analysis 3. Revenue trends: the 5-minute windows per currency with their USD value, hourly
-- and daily rollups (UTC periods) summed from the windows' totals, and the USD total across
-- currencies per period in analytics_revenue_trends_usd.
CREATE TABLE analytics_revenue_trends (
    window_start      timestamptz NOT NULL,
    window_end        timestamptz NOT NULL,
    currency          text NOT NULL,
    total_revenue     numeric(20, 2) NOT NULL,
    order_count       bigint NOT NULL,
    total_revenue_usd numeric(20, 2),
    computed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (window_start, currency)
);

CREATE TABLE analytics_revenue_trends_hourly (
    period_start      timestamptz NOT NULL,
    currency          text NOT NULL,
    total_revenue     numeric(20, 2) NOT NULL,
    order_count       bigint NOT NULL,
    total_revenue_usd numeric(20, 2),
    computed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period_start, currency)
);

CREATE TABLE analytics_revenue_trends_daily (
    period_start      timestamptz NOT NULL,
    currency          text NOT NULL,
    total_revenue     numeric(20, 2) NOT NULL,
    order_count       bigint NOT NULL,
    total_revenue_usd numeric(20, 2),
    computed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period_start, currency)
);

-- All currencies together, in USD, per period of each granularity. The USD total is the exact
-- sum over currencies rounded once, so it can differ by a cent from the sum of the rounded
-- per-currency values (NULL when no currency of the period has a rate); order_count counts
-- every order, rated currency or not.
CREATE TABLE analytics_revenue_trends_usd (
    granularity       text NOT NULL CHECK (granularity IN ('5min', 'hour', 'day')),
    period_start      timestamptz NOT NULL,
    total_revenue_usd numeric(20, 2),
    order_count       bigint NOT NULL,
    computed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (granularity, period_start)
);

-- Analysis 4, from orders_raw. The thresholds apply to total_spend_usd as stored (rounded to
-- the cent), so the segment always agrees with the amount shown: VIP > 1000, Premium > 500,
-- else New with exactly one order, else Regular.
CREATE TABLE analytics_user_segments (
    user_id         text PRIMARY KEY,
    segment         text NOT NULL CHECK (segment IN ('VIP', 'Premium', 'Regular', 'New')),
    total_spend_usd numeric(20, 2),
    order_count     bigint NOT NULL,
    computed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX analytics_user_segments_segment_idx ON analytics_user_segments (segment);

-- One row per segment, all four even when empty. revenue_usd sums the users' stored (rounded)
-- spends, so it equals the sum over analytics_user_segments; avg_spend_usd = revenue_usd /
-- users, NULL for an empty segment.
CREATE TABLE analytics_segment_summary (
    segment       text PRIMARY KEY CHECK (segment IN ('VIP', 'Premium', 'Regular', 'New')),
    users         bigint NOT NULL,
    revenue_usd   numeric(20, 2) NOT NULL,
    avg_spend_usd numeric(20, 2),
    orders        bigint NOT NULL,
    computed_at   timestamptz NOT NULL DEFAULT now()
);
