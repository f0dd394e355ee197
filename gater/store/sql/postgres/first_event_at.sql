-- One step of a read from a time (store/_query.TimeBisection): the first event at or after a
-- position, and when it was committed.
SELECT position, created_epoch FROM events WHERE store_id = $1 AND position >= $2
ORDER BY position LIMIT 1
