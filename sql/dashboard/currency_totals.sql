-- All-time revenue and orders per currency: the sum of its 5-minute windows (one row per window
-- and currency, a few hundred a day), never a scan of orders_raw.
SELECT currency, sum(total_revenue) AS total_revenue, sum(order_count)::bigint AS order_count
FROM revenue_by_currency_5min
GROUP BY currency
ORDER BY currency
