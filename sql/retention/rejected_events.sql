-- One bounded step of rejected_events' retention: deletes at most `limit` records rejected more
-- than `days` days ago (rejected_at is indexed). A replay of a deleted reject's Kafka record
-- (a new checkpoint) inserts it again, once: the table is keyed by the record's position.
DELETE FROM rejected_events
WHERE ctid = ANY(ARRAY(
    SELECT ctid
    FROM rejected_events
    WHERE rejected_at < now() - make_interval(days => %(days)s)
    LIMIT %(limit)s))
