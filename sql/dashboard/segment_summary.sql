-- The four segments of the latest analytics run (always four rows), highest spenders first.
SELECT segment, users, revenue_usd, avg_spend_usd, orders, computed_at
FROM analytics_segment_summary
ORDER BY array_position(ARRAY['VIP', 'Premium', 'Regular', 'New'], segment)
