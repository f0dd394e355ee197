-- An import's events, each with its own created time (an append's share the commit's).
INSERT INTO events (store_id, position, stream_id, version, event_id, event_type, created_epoch, record)
SELECT $1, e.position, e.stream_id, e.version, e.event_id, e.event_type, e.created_epoch, e.record
FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::uuid[], $6::text[], $7::bigint[], $8::bytea[])
    AS e (position, stream_id, version, event_id, event_type, created_epoch, record)
