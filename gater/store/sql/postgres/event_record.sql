SELECT record FROM events WHERE store_id = $1 AND stream_id = $2 AND version = $3
