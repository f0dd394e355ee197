SELECT store_id, created_epoch, last_position, stream_count, event_bytes
FROM stores WHERE store_id = $1
