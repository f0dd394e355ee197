-- Read after store_lock, in a new statement: under READ COMMITTED this statement's snapshot
-- includes every append committed before the lock was granted.
SELECT last_position FROM stores WHERE store_id = $1
