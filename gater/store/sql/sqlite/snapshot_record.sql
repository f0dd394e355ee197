INSERT OR REPLACE INTO snapshots
    (source_uuid, stream_uuid, source_version, source_type, data, metadata, created_epoch)
VALUES (?, ?, ?, ?, ?, ?, ?)
