-- Q2: update mode. Each row is the window's full aggregate from Spark's state, so it replaces.
INSERT INTO revenue_by_currency_5min (window_start, window_end, currency, total_revenue, order_count, avg_order_value)
SELECT window_start, window_end, currency, total_revenue, order_count, avg_order_value
FROM staging
ON CONFLICT (window_start, currency) DO UPDATE
SET window_end = EXCLUDED.window_end,
    total_revenue = EXCLUDED.total_revenue,
    order_count = EXCLUDED.order_count,
    avg_order_value = EXCLUDED.avg_order_value,
    updated_at = now()
