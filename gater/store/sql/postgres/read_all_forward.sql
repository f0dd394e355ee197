SELECT position, stream_id, version, event_id::text AS event_id, event_type, record
FROM events WHERE store_id = $1 AND position >= $2
ORDER BY position LIMIT $3
