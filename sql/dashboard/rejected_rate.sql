-- Records rejected and records read over the span, as one query counted them (the
-- rejected_events query: it reads every record of the three topics).
SELECT coalesce(sum(rejected_rows), 0)::bigint AS rejected, coalesce(sum(input_rows), 0)::bigint AS records
FROM stream_progress
WHERE query_name = %(query)s AND recorded_at > now() - %(span)s
