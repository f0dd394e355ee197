-- Without the streams' rules: what a read runs while the store has no stream metadata at all
-- (the common case; see SqliteStore._visible).
SELECT position, stream_id, version, event_id, event_type, record FROM events
WHERE stream_id = ? AND version <= ? ORDER BY version DESC LIMIT ?
