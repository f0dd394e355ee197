-- Imports keep the gaps a scavenge left in their source (docs/transfer.md). The log still only
-- grows: an append takes exactly the next position; an import job may skip positions, only
-- while import_pass holds its one row — which the job inserts and deletes inside its own
-- transaction (as lifecycle_pass), so no other transaction ever sees it.
CREATE TABLE IF NOT EXISTS import_pass (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1)
);
DROP TRIGGER IF EXISTS events_dense;
CREATE TRIGGER events_dense BEFORE INSERT ON events
-- (max() alone in its subquery, so SQLite reads it off the end of the primary key)
WHEN NEW.position <> coalesce((SELECT max(position) FROM events), -1) + 1
 AND (NEW.position <= coalesce((SELECT max(position) FROM events), -1) OR NOT EXISTS (SELECT 1 FROM import_pass))
BEGIN SELECT RAISE(ABORT, 'position must be the next global position'); END;
