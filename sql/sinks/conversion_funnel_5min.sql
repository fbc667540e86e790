-- Q3: update mode. Each row is the (window, user) pair's full counts from Spark's state.
INSERT INTO conversion_funnel_5min (window_start, window_end, user_id, view_count, order_count)
SELECT window_start, window_end, user_id, view_count, order_count
FROM staging
ON CONFLICT (window_start, user_id) DO UPDATE
SET window_end = EXCLUDED.window_end,
    view_count = EXCLUDED.view_count,
    order_count = EXCLUDED.order_count,
    updated_at = now()
