UPDATE subscriptions
SET state = $3::jsonb, checkpoint = $4, updated_epoch = $5
WHERE store_id = $1 AND name = $2 AND checkpoint <= $4 AND ($6::bigint IS NULL OR fence = $6)
RETURNING fence
