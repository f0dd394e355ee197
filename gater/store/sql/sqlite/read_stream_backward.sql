-- The columns of every read: the event, then its stream's rules (store/_lifecycle.keep_visible).
SELECT e.position, e.stream_id, e.version, e.event_id, e.event_type, e.record, e.created_epoch,
       m.truncate_before, m.max_count, m.max_age_us,
       CASE WHEN m.max_count IS NULL THEN NULL ELSE (SELECT version FROM streams s WHERE s.stream_id = e.stream_id) END
FROM events e LEFT JOIN stream_meta m ON m.stream_id = e.stream_id
WHERE e.stream_id = ? AND e.version <= ? ORDER BY e.version DESC LIMIT ?
