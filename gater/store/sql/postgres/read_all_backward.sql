SELECT e.position, e.stream_id, e.version, e.event_id::text AS event_id, e.event_type, e.record, e.created_epoch,
       m.truncate_before, m.max_count, m.max_age_us,
       CASE WHEN m.max_count IS NULL THEN NULL
            ELSE (SELECT s.version FROM streams s WHERE s.store_id = e.store_id AND s.stream_id = e.stream_id) END
FROM events e LEFT JOIN stream_meta m ON m.store_id = e.store_id AND m.stream_id = e.stream_id
WHERE e.store_id = $1 AND e.position <= $2
ORDER BY e.position DESC LIMIT $3
