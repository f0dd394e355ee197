-- The tags of the batch's events: (tag, position) pairs.
INSERT INTO event_tags (store_id, tag, position)
SELECT $1, t.tag, t.position FROM unnest($2::text[], $3::bigint[]) AS t (tag, position)
