UPDATE events SET record = ? WHERE stream_id = ? AND version = ?
