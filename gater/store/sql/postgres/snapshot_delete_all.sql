DELETE FROM snapshots WHERE store_id = $1 AND source_uuid = $2 AND stream_uuid = $3
