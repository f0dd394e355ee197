SELECT count(*) FROM subscriptions WHERE store_id = $1
