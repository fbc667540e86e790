-- The most frequent reasons for rejecting a record in the last hour.
SELECT topic, reason, count(*) AS n
FROM rejected_events
WHERE rejected_at > now() - interval '1 hour'
GROUP BY topic, reason
ORDER BY n DESC, topic, reason
LIMIT 10
