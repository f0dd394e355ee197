INSERT INTO subscriptions (store_id, name, definition, state, checkpoint, created_epoch, updated_epoch)
VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, $6, $6)
ON CONFLICT (store_id, name) DO UPDATE
SET definition = excluded.definition, updated_epoch = excluded.updated_epoch
RETURNING (xmax = 0) AS created
