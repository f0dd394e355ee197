-- A page of a DCB query read: {positions} is the statement of store/_query.positions_sql
-- (index ranges only; its parameter $1 is the store id), {order} ASC or DESC.
SELECT position, stream_id, version, event_id::text AS event_id, event_type, record
FROM events WHERE store_id = $1 AND position IN ({positions}) ORDER BY position {order}
