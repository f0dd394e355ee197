-- An append brings a soft-deleted stream back (its planner refused tombstoned ones).
INSERT INTO streams (stream_id, version, created_epoch) VALUES {rows}
ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, deleted = 0
