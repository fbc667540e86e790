-- One bounded step of stream_progress's retention: deletes at most `limit` rows recorded more
-- than `days` days ago. The newest row of each (query, checkpoint) stays whatever its age:
-- `eventflow status`, the sensors and the checks read a query's latest row, and a stream stopped
-- for longer than the retention must not look as if it never ran. Batch ids only grow within a
-- checkpoint, so "newest" is the highest batch id (the primary key's index answers it).
DELETE FROM stream_progress
WHERE ctid = ANY(ARRAY(
    SELECT p.ctid
    FROM stream_progress p
    WHERE p.recorded_at < now() - make_interval(days => %(days)s)
      AND EXISTS (SELECT 1 FROM stream_progress newer
                  WHERE newer.query_name = p.query_name AND newer.checkpoint_id = p.checkpoint_id
                    AND newer.batch_id > p.batch_id)
    LIMIT %(limit)s))
