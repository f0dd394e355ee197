SELECT coalesce(max(position), -1) FROM events
