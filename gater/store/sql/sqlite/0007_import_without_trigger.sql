-- An import job now drops events_dense inside its own transaction and creates it again, from
-- its own text in sqlite_master, before it commits (sqlite/_transfer.py): a BEFORE INSERT
-- trigger costs about 4.5 µs per row whatever its WHEN, a fifth of an imported event's
-- insert; no other connection ever sees the store without it. So the trigger goes back to
-- the one rule of 0001 — every insert takes the next position — and import_pass (0006) goes.
DROP TRIGGER IF EXISTS events_dense;
CREATE TRIGGER events_dense BEFORE INSERT ON events
-- (max() alone in its subquery, so SQLite reads it off the end of the primary key)
WHEN NEW.position <> coalesce((SELECT max(position) FROM events), -1) + 1
BEGIN SELECT RAISE(ABORT, 'position must be the next global position'); END;
DROP TABLE IF EXISTS import_pass;
