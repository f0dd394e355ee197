SELECT position, stream_id, version, event_id::text AS event_id, event_type, record
FROM events WHERE store_id = $1 AND stream_id = $2 AND version >= $3
ORDER BY version LIMIT $4
