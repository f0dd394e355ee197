DELETE FROM events WHERE position IN (SELECT value FROM json_each(?))
