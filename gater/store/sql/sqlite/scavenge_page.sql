-- The events of one scavenge batch, with their streams' rules (the columns of read_all_forward).
SELECT e.position, e.stream_id, e.version, e.event_id, e.event_type, e.record, e.created_epoch,
       m.truncate_before, m.max_count, m.max_age_us,
       CASE WHEN m.max_count IS NULL THEN NULL ELSE (SELECT version FROM streams s WHERE s.stream_id = e.stream_id) END
FROM events e JOIN stream_meta m ON m.stream_id = e.stream_id
WHERE e.position >= ? AND e.position < ? ORDER BY e.position
