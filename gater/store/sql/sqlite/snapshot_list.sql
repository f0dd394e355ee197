-- Keys after (?, ?, ?), filtered by source (? or NULL) and stream (? or NULL).
SELECT source_uuid, stream_uuid, source_version, source_type, created_epoch FROM snapshots
WHERE (source_uuid, stream_uuid, source_version) > (?1, ?2, ?3)
  AND (?4 IS NULL OR source_uuid = ?4)
  AND (?5 IS NULL OR stream_uuid = ?5)
ORDER BY source_uuid, stream_uuid, source_version LIMIT ?6
