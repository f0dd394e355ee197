UPDATE stores
SET last_position = $2, stream_count = stream_count + $3, event_bytes = event_bytes + $4
WHERE store_id = $1
