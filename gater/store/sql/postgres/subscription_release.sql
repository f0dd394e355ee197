UPDATE subscriptions SET owner_node = NULL, owner_address = NULL, lease_until = NULL
WHERE store_id = $1 AND name = $2 AND owner_node = $3 AND fence = $4
