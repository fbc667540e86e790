-- Records rejected and records read over the span by the given queries (one per topic: together
-- they read every record of the three topics).
SELECT coalesce(sum(rejected_rows), 0)::bigint AS rejected, coalesce(sum(input_rows), 0)::bigint AS records
FROM stream_progress
WHERE query_name = ANY(%(queries)s) AND recorded_at > now() - %(span)s
