INSERT INTO snapshots
    (store_id, source_uuid, stream_uuid, source_version, source_type, data, metadata, created_epoch)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (store_id, source_uuid, stream_uuid, source_version) DO UPDATE
SET source_type = excluded.source_type, data = excluded.data, metadata = excluded.metadata,
    created_epoch = excluded.created_epoch
