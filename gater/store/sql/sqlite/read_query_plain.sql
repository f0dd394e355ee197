-- Without the streams' rules: what a read runs while the store has no stream metadata at all
-- (the common case; see SqliteStore._visible).
-- A page of a DCB query read: {positions} is the statement of store/_query.positions_sql
-- (index ranges only), {order} ASC or DESC.
SELECT position, stream_id, version, event_id, event_type, record FROM events
WHERE position IN ({positions}) ORDER BY position {order}
