-- The step's hidden events and their tags (the guard lets both through: scavenge_allow).
WITH tags_gone AS (
    DELETE FROM event_tags WHERE store_id = $1 AND position = ANY($2::bigint[])
)
DELETE FROM events WHERE store_id = $1 AND position = ANY($2::bigint[])
