DELETE FROM subscriptions WHERE store_id = $1 AND name = $2
