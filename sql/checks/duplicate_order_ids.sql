-- Each order id once in orders_raw, across its day partitions. The stream deduplicates by id; the
-- primary key, (order_id, "timestamp") since the table is partitioned by time, stops a replayed
-- order only: one id under two event times passes it and is caught here. One row: rows, distinct
-- ids, the first ten duplicated ids.
WITH ids AS (SELECT order_id, count(*) AS n FROM orders_raw GROUP BY order_id)
SELECT coalesce(sum(n), 0)::bigint AS order_rows,
       count(*) AS distinct_ids,
       to_jsonb((array_agg(jsonb_build_object('order_id', order_id, 'rows', n) ORDER BY order_id)
                 FILTER (WHERE n > 1))[1:10]) AS first_duplicates
FROM ids
