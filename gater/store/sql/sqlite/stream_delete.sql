UPDATE streams SET deleted = ? WHERE stream_id = ?
