-- An export's page: the records from a position up to the view's head.
SELECT position, record FROM events
WHERE store_id = $1 AND position >= $2 AND position <= $3
ORDER BY position LIMIT $4
