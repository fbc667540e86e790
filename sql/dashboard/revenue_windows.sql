-- The windows that start less than the span before the latest one, per currency, with their USD
-- value (NULL for a currency without a rate). Relative to the latest window rather than now(),
-- so a stream replaying older events still shows its recent windows. A range of the primary
-- key's leading column, and max() read from its end.
SELECT r.window_start, r.window_end, r.currency, r.total_revenue, r.order_count, r.avg_order_value,
       round(r.total_revenue * c.usd_rate, 2) AS total_revenue_usd
FROM revenue_by_currency_5min r
LEFT JOIN currency_rates c USING (currency)
WHERE r.window_start > (SELECT max(window_start) FROM revenue_by_currency_5min) - %(span)s
ORDER BY r.window_start, r.currency
