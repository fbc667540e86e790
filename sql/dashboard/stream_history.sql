-- The queries' batches over the span (the latest `limit` at most), oldest first: lag and
-- watermark delay over time. A range of the (query_name, recorded_at) index.
SELECT *
FROM (
    SELECT s.query_name, s.recorded_at, s.input_rows, s.duration_ms,
           (SELECT coalesce(sum(l.value::bigint), 0) FROM jsonb_each_text(s.lag) AS l)::bigint AS lag_records,
           extract(epoch FROM s.recorded_at - s.watermark) AS watermark_delay_s
    FROM stream_progress s
    WHERE s.query_name = ANY(%(queries)s::text[]) AND s.recorded_at > now() - %(span)s
    ORDER BY s.recorded_at DESC
    LIMIT %(limit)s
) latest
ORDER BY recorded_at, query_name
