-- A page of a DCB query read, forward, for the wire (store/base.EncodedBatch): only what a
-- batch needs of each event — its position, commit time and record — and `rules`, whether
-- any stream of the store has metadata (deletes write some): then the caller reads the page
-- again with the rules applied (`_lifecycle.keep_visible`). {positions} is the statement of
-- store/_query.positions_sql (index ranges only; $1 is the store id), as in read_query.sql.
SELECT EXISTS (SELECT 1 FROM stream_meta m WHERE m.store_id = $1) AS rules, e.position, e.created_epoch, e.record
FROM events e
WHERE e.store_id = $1 AND e.position = ANY(ARRAY({positions})) ORDER BY e.position
