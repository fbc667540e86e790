-- Analysis 2 in plain PostgreSQL: orders / views x 100 per user over all windows, NULL without views.
SELECT user_id,
       sum(view_count)::bigint AS view_count,
       sum(order_count)::bigint AS order_count,
       CASE WHEN sum(view_count) > 0
            THEN round(sum(order_count) * 100 / sum(view_count), 2)::numeric(20, 2) END AS conversion_rate
FROM conversion_funnel_5min
GROUP BY user_id
