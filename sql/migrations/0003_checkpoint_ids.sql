-- Batch ids restart at 0 with every new checkpoint. Keying the exactly-once ledger (and the
-- progress rows) by the checkpoint's persistent query id as well means a new or deleted
-- checkpoint can never make the sink skip a batch that an older checkpoint committed.
ALTER TABLE stream_batches ADD COLUMN checkpoint_id text NOT NULL DEFAULT '';
ALTER TABLE stream_batches DROP CONSTRAINT stream_batches_pkey;
ALTER TABLE stream_batches ADD PRIMARY KEY (query_name, checkpoint_id, batch_id);

ALTER TABLE stream_progress ADD COLUMN checkpoint_id text NOT NULL DEFAULT '';
ALTER TABLE stream_progress DROP CONSTRAINT stream_progress_pkey;
ALTER TABLE stream_progress ADD PRIMARY KEY (query_name, checkpoint_id, batch_id);
CREATE INDEX stream_progress_recorded_at_idx ON stream_progress (query_name, recorded_at);
