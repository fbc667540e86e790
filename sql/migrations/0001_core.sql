-- EventFlow core schema: the streaming sink tables (column names are the seed's), rejected
-- records, reference currency rates, and the bookkeeping the exactly-once sinks rely on.

CREATE TABLE orders_raw (
    order_id        text PRIMARY KEY,
    user_id         text NOT NULL,
    product_id      text NOT NULL,
    price           numeric(12, 2) NOT NULL CHECK (price > 0),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    "timestamp"     timestamptz NOT NULL,
    kafka_partition integer,
    kafka_offset    bigint,
    -- When the row became visible: end-to-end latency is ingested_at - "timestamp".
    ingested_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX orders_raw_timestamp_idx ON orders_raw ("timestamp");
CREATE INDEX orders_raw_user_id_idx ON orders_raw (user_id);

CREATE TABLE revenue_by_currency_5min (
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL,
    currency        text NOT NULL,
    total_revenue   numeric(16, 2) NOT NULL,
    order_count     bigint NOT NULL,
    avg_order_value numeric(16, 2) NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (window_start, currency)
);
CREATE INDEX revenue_by_currency_5min_window_end_idx ON revenue_by_currency_5min (window_end);

CREATE TABLE conversion_funnel_5min (
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    user_id      text NOT NULL,
    view_count   bigint NOT NULL DEFAULT 0,
    order_count  bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (window_start, user_id)
);
CREATE INDEX conversion_funnel_5min_user_id_idx ON conversion_funnel_5min (user_id);

-- Records the stream could not use, with why. Keyed by their Kafka position, so a replay
-- of the same input records them once.
CREATE TABLE rejected_events (
    topic           text NOT NULL,
    "partition"     integer NOT NULL,
    "offset"        bigint NOT NULL,
    kafka_timestamp timestamptz,
    record_key      text,
    payload         text NOT NULL,        -- at most 4 KiB of it; payload_bytes tells the full size
    payload_bytes   integer NOT NULL,
    reason          text NOT NULL,
    rejected_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, "partition", "offset")
);
CREATE INDEX rejected_events_rejected_at_idx ON rejected_events (rejected_at);

-- Reference rates: the USD value of one unit of each currency. Used wherever amounts in
-- different currencies are added up (revenue trends' USD total, user segments' spend).
-- Static reference values, not live FX; update them with an UPDATE or a new migration.
CREATE TABLE currency_rates (
    currency   text PRIMARY KEY CHECK (currency ~ '^[A-Z]{3}$'),
    usd_rate   numeric(12, 6) NOT NULL CHECK (usd_rate > 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO currency_rates (currency, usd_rate) VALUES
    ('USD', 1.000000),
    ('EUR', 1.080000),
    ('GBP', 1.270000),
    ('CAD', 0.730000),
    ('AUD', 0.660000);

-- Exactly-once ledger: one row per (query, micro-batch) committed in the same transaction
-- as that batch's writes. A replayed batch finds its row and writes nothing.
CREATE TABLE stream_batches (
    query_name   text NOT NULL,
    batch_id     bigint NOT NULL,
    row_count    bigint NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (query_name, batch_id)
);

-- Per query and batch: how far event time got and what the batch did. The CLI and Dagster
-- read it; a window whose end is at or before a query's watermark is final.
CREATE TABLE stream_progress (
    query_name    text NOT NULL,
    batch_id      bigint NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    watermark     timestamptz,
    input_rows    bigint NOT NULL,
    output_rows   bigint NOT NULL,
    late_rows     bigint NOT NULL,
    rejected_rows bigint NOT NULL,
    duration_ms   bigint NOT NULL,
    lag           jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (query_name, batch_id)
);
