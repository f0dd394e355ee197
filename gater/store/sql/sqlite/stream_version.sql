-- A deleted stream reads as missing (-1).
SELECT CASE WHEN deleted = 0 THEN version ELSE -1 END FROM streams WHERE stream_id = ?
