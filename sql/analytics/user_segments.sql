-- Analysis 4 in plain PostgreSQL: USD spend per user (rounded to the cent, then compared).
WITH per_user AS (
    SELECT o.user_id,
           round(sum(o.price * c.usd_rate), 2)::numeric(20, 2) AS total_spend_usd,
           count(*)::bigint AS order_count
    FROM orders_raw o
    LEFT JOIN currency_rates c USING (currency)
    GROUP BY o.user_id
)
SELECT user_id,
       CASE WHEN total_spend_usd > 1000 THEN 'VIP'
            WHEN total_spend_usd > 500 THEN 'Premium'
            WHEN order_count = 1 THEN 'New'
            ELSE 'Regular' END AS segment,
       total_spend_usd,
       order_count
FROM per_user
