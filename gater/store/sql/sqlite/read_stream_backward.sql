SELECT position, stream_id, version, event_id, event_type, record FROM events
WHERE stream_id = ? AND version <= ? ORDER BY version DESC LIMIT ?
