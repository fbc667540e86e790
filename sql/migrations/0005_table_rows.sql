-- One streaming query per topic now writes several tables in one transaction: the ledger and
-- the progress rows keep how many rows each table received ({"orders_raw": 120, ...}).
ALTER TABLE stream_batches ADD COLUMN table_rows jsonb NOT NULL DEFAULT '{}';
ALTER TABLE stream_progress ADD COLUMN table_rows jsonb NOT NULL DEFAULT '{}';
