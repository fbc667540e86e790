-- One bounded step of the exactly-once ledger's retention: deletes at most `limit` rows
-- committed more than `days` days ago. What a replay needs stays: Spark replays only the last
-- batch of a checkpoint (batch N+1 is planned after N's commit is in the checkpoint), and the
-- sink recognises it by its ledger row, keyed (query, checkpoint's query id, batch id). So the
-- newest row of each (query, checkpoint) is never deleted, whatever its age, including those of
-- checkpoints no longer in use (one row each).
DELETE FROM stream_batches
WHERE ctid = ANY(ARRAY(
    SELECT b.ctid
    FROM stream_batches b
    WHERE b.committed_at < now() - make_interval(days => %(days)s)
      AND EXISTS (SELECT 1 FROM stream_batches newer
                  WHERE newer.query_name = b.query_name AND newer.checkpoint_id = b.checkpoint_id
                    AND newer.batch_id > b.batch_id)
    LIMIT %(limit)s))
