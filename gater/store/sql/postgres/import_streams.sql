-- An import's stream states: each stream's version and deletion state become the source's, and
-- the store counts the streams this creates.
WITH written AS (
    INSERT INTO streams (store_id, stream_id, version, deleted)
    SELECT $1, s.stream_id, s.version, s.deleted
    FROM unnest($2::text[], $3::bigint[], $4::smallint[]) AS s (stream_id, version, deleted)
    ON CONFLICT (store_id, stream_id) DO UPDATE SET version = excluded.version, deleted = excluded.deleted
    RETURNING (xmax = 0) AS created
)
UPDATE stores SET stream_count = stream_count + (SELECT count(*) FROM written WHERE created) WHERE store_id = $1
