-- When each streamed table was last written, and how many seconds ago (by the server's clock).
SELECT table_name, latest, extract(epoch FROM now() - latest)::float8 AS age_s
FROM (SELECT 'orders_raw' AS table_name, max(ingested_at) AS latest FROM orders_raw
      UNION ALL
      SELECT 'revenue_by_currency_5min', max(updated_at) FROM revenue_by_currency_5min
      UNION ALL
      SELECT 'conversion_funnel_5min', max(updated_at) FROM conversion_funnel_5min) writes
