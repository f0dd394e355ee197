SELECT stream_id, version FROM streams WHERE stream_id > ? AND deleted = 0 ORDER BY stream_id LIMIT ?
