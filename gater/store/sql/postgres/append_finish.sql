-- The rest of an append transaction after its events, in one statement (one round trip):
-- the streams' new versions, the store's head, and the notification that is delivered to
-- listeners when (and only if) the transaction commits, in commit order. Data-modifying
-- WITH parts always run to completion, whether or not the final SELECT reads them.
WITH streams_written AS (
    INSERT INTO streams (store_id, stream_id, version)
    SELECT $1, s.stream_id, s.version FROM unnest($2::text[], $3::bigint[]) AS s (stream_id, version)
    ON CONFLICT (store_id, stream_id) DO UPDATE SET version = excluded.version, deleted = 0
), head_written AS (
    UPDATE stores
    SET last_position = $4, stream_count = stream_count + $5, event_bytes = event_bytes + $6
    WHERE store_id = $1
)
SELECT pg_notify('gater_events', $7::text)
