INSERT INTO events (store_id, position, stream_id, version, event_id, event_type, created_epoch, record)
SELECT $1, e.position, e.stream_id, e.version, e.event_id, e.event_type, $2, e.record
FROM unnest($3::bigint[], $4::text[], $5::bigint[], $6::uuid[], $7::text[], $8::bytea[])
    AS e (position, stream_id, version, event_id, event_type, record)
