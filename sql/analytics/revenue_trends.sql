-- Analysis 3 in plain PostgreSQL, the 5-minute series: each window per currency with its USD value.
SELECT r.window_start, r.window_end, r.currency,
       r.total_revenue::numeric(20, 2) AS total_revenue,
       r.order_count,
       round(r.total_revenue * c.usd_rate, 2)::numeric(20, 2) AS total_revenue_usd
FROM revenue_by_currency_5min r
LEFT JOIN currency_rates c USING (currency)
