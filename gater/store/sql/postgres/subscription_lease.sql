-- Take the lease when it is free or expired (a new owner: the fence grows), or renew it when
-- it is ours already; then say who holds it. One statement, so two nodes cannot both win.
WITH taken AS (
    UPDATE subscriptions
    SET owner_node = $3,
        owner_address = $4,
        lease_until = clock_timestamp() + make_interval(secs => $5),
        fence = CASE WHEN owner_node IS DISTINCT FROM $3 THEN fence + 1 ELSE fence END
    WHERE store_id = $1 AND name = $2
      AND (owner_node IS NULL OR owner_node = $3 OR lease_until < clock_timestamp())
    RETURNING owner_node, owner_address, fence
)
SELECT owner_node, owner_address, fence, true AS held FROM taken
UNION ALL
SELECT owner_node, owner_address, fence, false AS held FROM subscriptions
WHERE store_id = $1 AND name = $2 AND NOT EXISTS (SELECT 1 FROM taken)
