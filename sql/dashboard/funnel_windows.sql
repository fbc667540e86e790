-- Product views and orders per 5-minute window, and how many users viewed and ordered in it,
-- over the windows that start less than the span before the latest one (primary key range).
SELECT window_start, sum(view_count)::bigint AS views, sum(order_count)::bigint AS orders,
       count(*) FILTER (WHERE view_count > 0) AS viewers, count(*) FILTER (WHERE order_count > 0) AS buyers
FROM conversion_funnel_5min
WHERE window_start > (SELECT max(window_start) FROM conversion_funnel_5min) - %(span)s
GROUP BY window_start
ORDER BY window_start
