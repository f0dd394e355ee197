-- Where the batch's event ids already are (the ids as a JSON array); only asked when the
-- unique index objected or an append failed its checks.
SELECT event_id, stream_id, version, position FROM events
WHERE event_id IN (SELECT value FROM json_each(?))
