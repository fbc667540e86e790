-- Records rejected and records read in the last hour, over the three queries (one per topic,
-- each reads every record of its topic).
SELECT coalesce(sum(rejected_rows), 0)::bigint AS rejected, coalesce(sum(input_rows), 0)::bigint AS records
FROM stream_progress
WHERE recorded_at > now() - interval '1 hour'
