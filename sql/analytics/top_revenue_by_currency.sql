-- Analysis 1 in plain PostgreSQL (bench/analytics.py times it against Spark; a test checks that
-- both give the same rows). avg_order_value is the true average, not an average of averages.
SELECT r.currency,
       sum(r.total_revenue)::numeric(20, 2) AS total_revenue,
       sum(r.order_count)::bigint AS total_orders,
       round(sum(r.total_revenue) / NULLIF(sum(r.order_count), 0), 2)::numeric(20, 2) AS avg_order_value,
       round(sum(r.total_revenue) * c.usd_rate, 2)::numeric(20, 2) AS total_revenue_usd
FROM revenue_by_currency_5min r
LEFT JOIN currency_rates c USING (currency)
GROUP BY r.currency, c.usd_rate
