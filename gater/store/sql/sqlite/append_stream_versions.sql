-- The current version and lifecycle state of each of the batch's streams that exists (the ids
-- as a JSON array).
SELECT stream_id, version, deleted FROM streams WHERE stream_id IN (SELECT value FROM json_each(?))
