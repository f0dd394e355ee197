SELECT source_uuid, stream_uuid, source_version, source_type, data, metadata, created_epoch
FROM snapshots WHERE source_uuid = ? AND stream_uuid = ? AND source_version = ?
