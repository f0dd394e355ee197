-- Cascades to streams, snapshots, subscriptions and stream metadata (ON DELETE CASCADE);
-- its events and their tags go with it by the stores_remove_events trigger (0006).
DELETE FROM stores WHERE store_id = $1
