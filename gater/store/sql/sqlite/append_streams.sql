INSERT INTO streams (stream_id, version, created_epoch) VALUES {rows}
ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version
