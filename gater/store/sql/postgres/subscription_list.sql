SELECT name, definition::text AS definition, state::text AS state
FROM subscriptions
WHERE store_id = $1
ORDER BY name
