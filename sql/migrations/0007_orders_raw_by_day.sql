-- orders_raw becomes a table partitioned by UTC day of "timestamp" (one partition per day,
-- orders_raw_pYYYYMMDD), so that old days can be detached and archived whole instead of deleted
-- row by row (storage/partitions.py, Dagster's orders_archive_job). The primary key must hold the
-- partition key: (order_id, "timestamp"); a retried order carries its own event time, so a replay
-- still meets its row. There is no DEFAULT partition: the day partitions are made ahead (when the
-- schema is applied and by the daily job), and the orders sink makes any other day a batch needs
-- in the batch's own transaction, so every row lands in its day.

-- The unpartitioned table is emptied into the new one below; its key and indexes go first to free
-- their names.
ALTER TABLE orders_raw RENAME TO orders_raw_unpartitioned;
ALTER TABLE orders_raw_unpartitioned DROP CONSTRAINT orders_raw_pkey;
DROP INDEX orders_raw_timestamp_idx;
DROP INDEX orders_raw_user_id_idx;

CREATE TABLE orders_raw (
    order_id        text NOT NULL,
    user_id         text NOT NULL,
    product_id      text NOT NULL,
    price           numeric(12, 2) NOT NULL CHECK (price > 0),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    "timestamp"     timestamptz NOT NULL,
    kafka_partition integer,
    kafka_offset    bigint,
    -- When the row became visible: end-to-end latency is ingested_at - "timestamp".
    ingested_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (order_id, "timestamp")
) PARTITION BY RANGE ("timestamp");
CREATE INDEX orders_raw_timestamp_idx ON orders_raw ("timestamp");
CREATE INDEX orders_raw_user_id_idx ON orders_raw (user_id);

-- Days archived (or being archived) by orders_archive_job: their partition is detached, exported
-- to file and dropped. The orders sink adds no row of such a day (it was counted when it first
-- came; a replay must not count it again) and makes no partition for it.
CREATE TABLE orders_raw_archive (
    day         date PRIMARY KEY,
    file        text NOT NULL,  -- the export's path, chosen once, so a rerun rewrites its own file only
    row_count   bigint,         -- rows exported; NULL until the day is archived
    started_at  timestamptz NOT NULL DEFAULT now(),
    archived_at timestamptz     -- NULL while the day is on its way (detached, exported, dropped)
);

-- Make the partition of a UTC day unless it is attached; true when it made it. Created as a table
-- of its own and then attached: ATTACH locks orders_raw in SHARE UPDATE EXCLUSIVE mode, which lets
-- readers and the sink's inserts go on (CREATE TABLE ... PARTITION OF would lock them out).
CREATE FUNCTION orders_raw_day_partition(day date) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    part text := format('orders_raw_p%s', to_char(day, 'YYYYMMDD'));
    day_start timestamptz := day::timestamp AT TIME ZONE 'UTC';
BEGIN
    IF EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = 'orders_raw'::regclass
               AND inhrelid = to_regclass(part) AND NOT inhdetachpending) THEN
        RETURN false;
    END IF;
    -- Makers of partitions take turns (the sinks, the daily job, the schema's appliers).
    PERFORM pg_advisory_xact_lock(7010, 1);
    IF to_regclass(part) IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = 'orders_raw'::regclass
                   AND inhrelid = to_regclass(part) AND NOT inhdetachpending) THEN
            RETURN false;
        END IF;
        RAISE EXCEPTION 'table % exists but is not attached to orders_raw: a day being archived (see '
                        'orders_raw_archive) or detached by hand; archive it (orders_archive_job) or attach it '
                        'again', part;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE orders_raw INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    EXECUTE format('ALTER TABLE orders_raw ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   part, day_start, day_start + interval '1 day');
    RETURN true;
END
$$;

-- The days the existing rows need, then the rows, then the old table goes.
SELECT orders_raw_day_partition(day)
FROM (SELECT DISTINCT ("timestamp" AT TIME ZONE 'UTC')::date AS day FROM orders_raw_unpartitioned) AS days;
INSERT INTO orders_raw (order_id, user_id, product_id, price, currency, "timestamp", kafka_partition, kafka_offset,
                        ingested_at)
SELECT order_id, user_id, product_id, price, currency, "timestamp", kafka_partition, kafka_offset, ingested_at
FROM orders_raw_unpartitioned;
DROP TABLE orders_raw_unpartitioned;
