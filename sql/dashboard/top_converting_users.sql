-- The users with the highest conversion rate (orders / views x 100) of the latest analytics run.
SELECT user_id, view_count, order_count, conversion_rate, computed_at
FROM analytics_conversion_rates
WHERE conversion_rate IS NOT NULL
ORDER BY conversion_rate DESC, order_count DESC, user_id
LIMIT %(limit)s
