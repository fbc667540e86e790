-- Analysis 3 in plain PostgreSQL, hourly rollup (UTC hours) of the windows' exact totals.
SELECT date_trunc('hour', r.window_start, 'UTC') AS period_start, r.currency,
       sum(r.total_revenue)::numeric(20, 2) AS total_revenue,
       sum(r.order_count)::bigint AS order_count,
       round(sum(r.total_revenue) * c.usd_rate, 2)::numeric(20, 2) AS total_revenue_usd
FROM revenue_by_currency_5min r
LEFT JOIN currency_rates c USING (currency)
GROUP BY 1, r.currency, c.usd_rate
