DELETE FROM snapshots WHERE source_uuid = ? AND stream_uuid = ?
