-- Records rejected and records read in the last hour, as the rejected_events query counted them
-- (it reads every record of the three topics).
SELECT coalesce(sum(rejected_rows), 0)::bigint AS rejected, coalesce(sum(input_rows), 0)::bigint AS records
FROM stream_progress
WHERE query_name = 'rejected_events' AND recorded_at > now() - interval '1 hour'
