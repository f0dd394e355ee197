SELECT record FROM events WHERE stream_id = ? AND version = ?
