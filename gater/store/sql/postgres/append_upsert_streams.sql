INSERT INTO streams (store_id, stream_id, version)
SELECT $1, s.stream_id, s.version FROM unnest($2::text[], $3::bigint[]) AS s (stream_id, version)
ON CONFLICT (store_id, stream_id) DO UPDATE SET version = excluded.version
