SELECT stream_id, version FROM streams
WHERE store_id = $1 AND stream_id > $2 AND deleted = 0
ORDER BY stream_id LIMIT $3
