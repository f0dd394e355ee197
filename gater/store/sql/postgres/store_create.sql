INSERT INTO stores (store_id, created_epoch) VALUES ($1, $2)
ON CONFLICT (store_id) DO NOTHING
RETURNING created_epoch
