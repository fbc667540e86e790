-- Rejected records, once per Kafka position however often they are read.
INSERT INTO rejected_events (topic, "partition", "offset", kafka_timestamp, record_key, payload, payload_bytes, reason)
SELECT topic, "partition", "offset", kafka_timestamp, record_key, payload, payload_bytes, reason
FROM staging
ON CONFLICT (topic, "partition", "offset") DO NOTHING
