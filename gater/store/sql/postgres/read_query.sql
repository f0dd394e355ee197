-- A page of a DCB query read: {positions} is the statement of store/_query.positions_sql
-- (index ranges only; its parameter $1 is the store id), {order} ASC or DESC.
-- `= ANY(ARRAY(...))`: the page's positions become one array that a single index scan of
-- events_pkey looks up in order, where `IN (...)` hashed them, joined each in a loop of its
-- own and sorted the result (about 30% more time per event read).
SELECT e.position, e.stream_id, e.version, e.event_id::text AS event_id, e.event_type, e.record, e.created_epoch,
       m.truncate_before, m.max_count, m.max_age_us,
       CASE WHEN m.max_count IS NULL THEN NULL
            ELSE (SELECT s.version FROM streams s WHERE s.store_id = e.store_id AND s.stream_id = e.stream_id) END
FROM events e LEFT JOIN stream_meta m ON m.store_id = e.store_id AND m.stream_id = e.stream_id
WHERE e.store_id = $1 AND e.position = ANY(ARRAY({positions})) ORDER BY e.position {order}
