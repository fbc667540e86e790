-- Analysis 3 in plain PostgreSQL: all currencies in USD per 5-minute window, hour and day (UTC).
-- The exact sum over currencies is rounded once; currencies without a rate are left out.
WITH w AS (
    SELECT r.window_start, r.total_revenue * c.usd_rate AS usd, r.order_count
    FROM revenue_by_currency_5min r
    LEFT JOIN currency_rates c USING (currency)
)
SELECT '5min' AS granularity, window_start AS period_start,
       round(sum(usd), 2)::numeric(20, 2) AS total_revenue_usd, sum(order_count)::bigint AS order_count
FROM w GROUP BY 2
UNION ALL
SELECT 'hour', date_trunc('hour', window_start, 'UTC'), round(sum(usd), 2)::numeric(20, 2), sum(order_count)::bigint
FROM w GROUP BY 2
UNION ALL
SELECT 'day', date_trunc('day', window_start, 'UTC'), round(sum(usd), 2)::numeric(20, 2), sum(order_count)::bigint
FROM w GROUP BY 2
