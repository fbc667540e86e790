-- Q1: raw orders. A replayed or repeated order id never creates a second row.
INSERT INTO orders_raw (order_id, user_id, product_id, price, currency, "timestamp", kafka_partition, kafka_offset)
SELECT order_id, user_id, product_id, price, currency, "timestamp", kafka_partition, kafka_offset
FROM staging
ON CONFLICT (order_id) DO NOTHING
