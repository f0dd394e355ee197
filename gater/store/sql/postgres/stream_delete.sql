UPDATE streams SET deleted = $3 WHERE store_id = $1 AND stream_id = $2
