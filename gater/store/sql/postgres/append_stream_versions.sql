SELECT stream_id, version, deleted FROM streams WHERE store_id = $1 AND stream_id = ANY($2::text[])
