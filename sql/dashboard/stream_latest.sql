-- The latest batch of each streaming query (NULLs for one that never ran): one backward step on
-- the (query_name, recorded_at) index per query. Lag is the records the partitions held beyond
-- what the batch read; the watermark delay is how far event time's watermark trailed the
-- batch's wall-clock time.
SELECT q.query_name, p.batch_id, p.recorded_at, p.watermark, p.input_rows, p.duration_ms, p.lag_records,
       extract(epoch FROM p.recorded_at - p.watermark) AS watermark_delay_s
FROM unnest(%(queries)s::text[]) AS q (query_name)
LEFT JOIN LATERAL (
    SELECT s.batch_id, s.recorded_at, s.watermark, s.input_rows, s.duration_ms,
           (SELECT coalesce(sum(l.value::bigint), 0) FROM jsonb_each_text(s.lag) AS l)::bigint AS lag_records
    FROM stream_progress s
    WHERE s.query_name = q.query_name
    ORDER BY s.recorded_at DESC
    LIMIT 1
) p ON true
ORDER BY q.query_name
