-- conversion_funnel_5min's order counts against orders_raw, per (window, user), for every
-- finalized window (end at or before the orders query's latest watermark). A funnel row with
-- views only agrees with a user who has no orders in that window. Archived days are left out,
-- as in revenue_matches_orders.sql. One row, as in
-- revenue_matches_orders.sql.
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
    SELECT f.window_start, f.user_id, f.order_count
    FROM conversion_funnel_5min f, horizon h
    WHERE f.window_end <= h.watermark
      AND NOT EXISTS (SELECT 1 FROM orders_raw_archive a WHERE a.day = (f.window_start AT TIME ZONE 'UTC')::date)
),
from_orders AS (
    SELECT date_bin('5 minutes', o."timestamp", TIMESTAMPTZ '1970-01-01 00:00:00+00') AS window_start,
           o.user_id, count(*) AS order_count
    FROM orders_raw o, horizon h
    WHERE o."timestamp" < h.watermark
      AND NOT EXISTS (SELECT 1 FROM orders_raw_archive a WHERE a.day = (o."timestamp" AT TIME ZONE 'UTC')::date)
    GROUP BY 1, 2
    HAVING date_bin('5 minutes', o."timestamp", TIMESTAMPTZ '1970-01-01 00:00:00+00') + interval '5 minutes'
           <= min(h.watermark)
),
compared AS (
    SELECT coalesce(t.window_start, o.window_start) AS window_start, coalesce(t.user_id, o.user_id) AS user_id,
           t.order_count AS table_orders, o.order_count AS orders_raw_orders,
           coalesce(t.order_count, 0) = coalesce(o.order_count, 0) AS agrees
    FROM from_table t FULL JOIN from_orders o ON o.window_start = t.window_start AND o.user_id = t.user_id
)
SELECT (SELECT watermark FROM horizon) AS finalized_through,
       count(*) AS compared,
       count(*) FILTER (WHERE NOT agrees) AS differing,
       to_jsonb((array_agg(to_jsonb(c) - 'agrees' ORDER BY window_start, user_id) FILTER (WHERE NOT agrees))[1:10])
           AS first_differences
FROM compared c
