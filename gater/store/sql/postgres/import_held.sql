-- The stored records an import batch overlaps, to compare with its own.
SELECT position, record FROM events WHERE store_id = $1 AND position BETWEEN $2 AND $3
