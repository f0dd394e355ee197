-- The stored records an import batch overlaps, to compare with its own.
SELECT position, record FROM events WHERE position BETWEEN ? AND ?
