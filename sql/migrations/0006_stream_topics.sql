-- The id Kafka gave each topic a checkpoint reads (a UUID, new for every creation of a topic
-- name). A topic deleted and recreated under a checkpoint gets another id, and the checkpoint's
-- offsets then name other records; the sinks compare ids on every batch (processing/sinks.py).
CREATE TABLE stream_topics (
    query_name    text NOT NULL,
    checkpoint_id text NOT NULL,
    topic         text NOT NULL,
    topic_id      text NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (query_name, checkpoint_id, topic)
);
