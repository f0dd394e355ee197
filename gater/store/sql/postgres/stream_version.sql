SELECT version FROM streams WHERE store_id = $1 AND stream_id = $2
