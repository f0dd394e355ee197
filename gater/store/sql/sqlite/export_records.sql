-- An export's page: the records from a position up to the view's head.
SELECT position, record FROM events WHERE position >= ? AND position <= ? ORDER BY position LIMIT ?
