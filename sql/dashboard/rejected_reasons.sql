-- The most frequent reasons among the latest records (at most `sample`) rejected over the span
-- (a backward range of the rejected_at index). A reason that quotes the offending value
-- ("invalid value: currency must be one of ...: XYZ") counts under its rule, without the value.
SELECT topic, regexp_replace(reason, '^(invalid value: [^:]*): .*$', '\1') AS reason, count(*) AS n
FROM (
    SELECT topic, reason
    FROM rejected_events
    WHERE rejected_at > now() - %(span)s
    ORDER BY rejected_at DESC
    LIMIT %(sample)s
) latest
GROUP BY 1, 2
ORDER BY n DESC, topic, reason
LIMIT %(limit)s
