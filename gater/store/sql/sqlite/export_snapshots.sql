-- Every snapshot with its data, in key order (an export).
SELECT source_uuid, stream_uuid, source_version, source_type, data, metadata, created_epoch
FROM snapshots ORDER BY source_uuid, stream_uuid, source_version
