SELECT event_id::text AS event_id, stream_id, version, position
FROM events WHERE store_id = $1 AND event_id = ANY($2::uuid[])
