-- The orders query's batch: valid, deduplicated, on-time orders in `staging`. New orders go
-- into orders_raw, and only those are added to the windowed tables: an order orders_raw already
-- holds (a replay from a new checkpoint: same id, same event time) is never counted twice, nor is
-- one of a day archived (orders_raw_archive: counted when it first came, its row since archived).
-- orders_days.sql made the days' partitions just before. Rows are upserted in
-- key order, the same order the product-view query uses, so the two never deadlock on a
-- funnel row. Returns the rows each table received.
WITH inserted AS (
    INSERT INTO orders_raw (order_id, user_id, product_id, price, currency, "timestamp", kafka_partition,
                            kafka_offset)
    SELECT order_id, user_id, product_id, price, currency, "timestamp", "partition", "offset"
    FROM staging s
    WHERE NOT EXISTS (SELECT 1 FROM orders_raw_archive a WHERE a.day = (s."timestamp" AT TIME ZONE 'UTC')::date)
    ON CONFLICT (order_id, "timestamp") DO NOTHING
    RETURNING order_id, "timestamp"
),
new_orders AS (
    SELECT s.* FROM staging s JOIN inserted USING (order_id, "timestamp")
),
revenue AS (
    INSERT INTO revenue_by_currency_5min AS r (window_start, window_end, currency, total_revenue, order_count,
                                               avg_order_value)
    SELECT window_start, window_end, currency, sum(price), count(*), round(sum(price) / count(*), 2)
    FROM new_orders
    GROUP BY window_start, window_end, currency
    ORDER BY window_start, currency
    ON CONFLICT (window_start, currency) DO UPDATE
    SET total_revenue = r.total_revenue + EXCLUDED.total_revenue,
        order_count = r.order_count + EXCLUDED.order_count,
        avg_order_value = round((r.total_revenue + EXCLUDED.total_revenue)
                                / (r.order_count + EXCLUDED.order_count), 2),
        updated_at = now()
    RETURNING 1
),
funnel AS (
    INSERT INTO conversion_funnel_5min AS f (window_start, window_end, user_id, view_count, order_count)
    SELECT window_start, window_end, user_id, 0, count(*)
    FROM new_orders
    GROUP BY window_start, window_end, user_id
    ORDER BY window_start, user_id
    ON CONFLICT (window_start, user_id) DO UPDATE
    SET order_count = f.order_count + EXCLUDED.order_count,
        updated_at = now()
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted) AS orders_raw,
       (SELECT count(*) FROM revenue) AS revenue_by_currency_5min,
       (SELECT count(*) FROM funnel) AS conversion_funnel_5min
