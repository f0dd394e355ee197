-- One step of a read from a time (store/_query.TimeBisection): the first event at or after a
-- position, and when it was committed.
SELECT position, created_epoch FROM events WHERE position >= ? ORDER BY position LIMIT 1
