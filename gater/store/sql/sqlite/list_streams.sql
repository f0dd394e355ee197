SELECT stream_id, version FROM streams WHERE stream_id > ? ORDER BY stream_id LIMIT ?
