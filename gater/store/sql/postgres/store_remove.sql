-- Cascades to events, streams and snapshots (ON DELETE CASCADE).
DELETE FROM stores WHERE store_id = $1
