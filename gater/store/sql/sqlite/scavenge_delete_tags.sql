DELETE FROM event_tags WHERE position IN (SELECT value FROM json_each(?))
