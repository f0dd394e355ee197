SELECT position, stream_id, version, event_id, event_type, record FROM events
WHERE position <= ? ORDER BY position DESC LIMIT ?
