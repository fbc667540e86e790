-- Per batch, the offset each partition was read up to ({"orders:0": 1234, ...}): with the
-- partitions' current ends, `eventflow status` tells whether records wait for a query now.
ALTER TABLE stream_progress ADD COLUMN read_offsets jsonb NOT NULL DEFAULT '{}'::jsonb;
