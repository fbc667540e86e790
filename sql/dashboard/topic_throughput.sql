-- Events/s per topic between consecutive batches of the query reading it (one query per topic):
-- how far its read offsets moved over the time between the two batches. The batches over the
-- span, the latest `limit` at most.
WITH batches AS (
    SELECT query_name, checkpoint_id, recorded_at, read_offsets
    FROM stream_progress
    WHERE query_name = ANY(%(queries)s) AND recorded_at > now() - %(span)s
    ORDER BY recorded_at DESC
    LIMIT %(limit)s
), positions AS (
    SELECT b.query_name, b.checkpoint_id, b.recorded_at, substring(o.key FROM '^(.*):[0-9]+$') AS topic,
           sum(o.value::bigint) AS position
    FROM batches b
    CROSS JOIN LATERAL jsonb_each_text(b.read_offsets) AS o
    GROUP BY 1, 2, 3, 4
), steps AS (
    SELECT query_name, topic, recorded_at,
           position - lag(position) OVER w AS records,
           extract(epoch FROM recorded_at - lag(recorded_at) OVER w) AS seconds
    FROM positions
    WINDOW w AS (PARTITION BY query_name, checkpoint_id, topic ORDER BY recorded_at)
)
SELECT topic, recorded_at, records, round(greatest(records, 0) / seconds, 2) AS events_per_s
FROM steps
WHERE seconds > 0
ORDER BY recorded_at, query_name, topic
