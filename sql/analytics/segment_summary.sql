-- Analysis 4's per-segment metrics in plain PostgreSQL, over `segments`: the rows of
-- user_segments.sql (a temporary table), every segment even when empty.
SELECT s.segment,
       count(u.user_id)::bigint AS users,
       coalesce(sum(u.total_spend_usd), 0)::numeric(20, 2) AS revenue_usd,
       round(coalesce(sum(u.total_spend_usd), 0) / NULLIF(count(u.user_id), 0), 2)::numeric(20, 2)
           AS avg_spend_usd,
       coalesce(sum(u.order_count), 0)::bigint AS orders
FROM (VALUES ('VIP'), ('Premium'), ('Regular'), ('New')) AS s (segment)
LEFT JOIN segments u USING (segment)
GROUP BY s.segment
