-- Rejected records of any topic, once per Kafka position however often they are read.
WITH inserted AS (
    INSERT INTO rejected_events (topic, "partition", "offset", kafka_timestamp, record_key, payload, payload_bytes,
                                 reason)
    SELECT topic, "partition", "offset", kafka_timestamp, record_key, payload, payload_bytes, reason
    FROM staging
    ON CONFLICT (topic, "partition", "offset") DO NOTHING
    RETURNING 1
)
SELECT count(*) AS rejected_events FROM inserted
