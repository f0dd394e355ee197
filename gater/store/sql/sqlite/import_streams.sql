-- An import's stream states: the stream's version and deletion state become the source's (a new
-- row's created time is the import's).
INSERT INTO streams (stream_id, version, created_epoch, deleted) VALUES (?, ?, ?, ?)
ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, deleted = excluded.deleted
