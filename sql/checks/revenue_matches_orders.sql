-- revenue_by_currency_5min against orders_raw, window by window, for every finalized window: one
-- whose end is at or before the orders query's current watermark, after which neither table
-- changes for it (the orders query writes both in one transaction). Days archived out of orders_raw
-- (orders_raw_archive) are left out: their windows stay, their orders are in files. One row: the horizon
-- (NULL until the orders query has a watermark), how many
-- (window, currency) pairs were compared, how many differ, and the first ten that differ.
WITH latest AS (  -- the orders query's current watermark: the one recorded last
    SELECT watermark
    FROM stream_progress
    WHERE query_name = 'orders' AND watermark IS NOT NULL
    ORDER BY recorded_at DESC
    LIMIT 1
),
horizon AS (
    SELECT max(watermark) AS watermark FROM latest
),
from_table AS (
    SELECT r.window_start, r.currency, r.total_revenue, r.order_count
    FROM revenue_by_currency_5min r, horizon h
    WHERE r.window_end <= h.watermark
      AND NOT EXISTS (SELECT 1 FROM orders_raw_archive a WHERE a.day = (r.window_start AT TIME ZONE 'UTC')::date)
),
from_orders AS (
    SELECT date_bin('5 minutes', o."timestamp", TIMESTAMPTZ '1970-01-01 00:00:00+00') AS window_start,
           o.currency, sum(o.price) AS total_revenue, count(*) AS order_count
    FROM orders_raw o, horizon h
    WHERE o."timestamp" < h.watermark
      AND NOT EXISTS (SELECT 1 FROM orders_raw_archive a WHERE a.day = (o."timestamp" AT TIME ZONE 'UTC')::date)
    GROUP BY 1, 2
    HAVING date_bin('5 minutes', o."timestamp", TIMESTAMPTZ '1970-01-01 00:00:00+00') + interval '5 minutes'
           <= min(h.watermark)
),
compared AS (
    SELECT coalesce(t.window_start, o.window_start) AS window_start, coalesce(t.currency, o.currency) AS currency,
           t.total_revenue AS table_revenue, o.total_revenue AS orders_raw_revenue,
           t.order_count AS table_orders, o.order_count AS orders_raw_orders,
           t.total_revenue IS NOT DISTINCT FROM o.total_revenue
               AND t.order_count IS NOT DISTINCT FROM o.order_count AS agrees
    FROM from_table t FULL JOIN from_orders o ON o.window_start = t.window_start AND o.currency = t.currency
)
SELECT (SELECT watermark FROM horizon) AS finalized_through,
       count(*) AS compared,
       count(*) FILTER (WHERE NOT agrees) AS differing,
       to_jsonb((array_agg(to_jsonb(c) - 'agrees' ORDER BY window_start, currency) FILTER (WHERE NOT agrees))[1:10])
           AS first_differences
FROM compared c
