-- Before orders.sql: the day partitions of orders_raw that the staged orders need and that the
-- platform did not make ahead (an old day replayed, a job that did not run), made in the batch's
-- own transaction so that no row ever lacks its day. Archived days are left out: orders.sql adds
-- none of their rows.
SELECT count(*) FILTER (WHERE orders_raw_day_partition(day)) AS partitions_made
FROM (SELECT DISTINCT ("timestamp" AT TIME ZONE 'UTC')::date AS day FROM staging) AS days
WHERE NOT EXISTS (SELECT 1 FROM orders_raw_archive a WHERE a.day = days.day)
