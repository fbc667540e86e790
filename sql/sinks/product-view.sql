-- The product-view query's batch: view counts per (window, user) of valid, deduplicated,
-- on-time views, in `staging`, added to the funnel (key order: see orders.sql).
WITH funnel AS (
    INSERT INTO conversion_funnel_5min AS f (window_start, window_end, user_id, view_count, order_count)
    SELECT window_start, window_end, user_id, view_count, 0
    FROM staging
    ORDER BY window_start, user_id
    ON CONFLICT (window_start, user_id) DO UPDATE
    SET view_count = f.view_count + EXCLUDED.view_count,
        updated_at = now()
    RETURNING 1
)
SELECT count(*) AS conversion_funnel_5min FROM funnel
