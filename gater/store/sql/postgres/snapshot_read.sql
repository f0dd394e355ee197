SELECT source_uuid, stream_uuid, source_version, source_type, data, metadata, created_epoch
FROM snapshots
WHERE store_id = $1 AND source_uuid = $2 AND stream_uuid = $3 AND source_version = $4
