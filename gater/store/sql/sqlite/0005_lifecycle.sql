-- Stream lifecycle (store/_lifecycle.py, docs/lifecycle.md): a stream's deletion state, its
-- metadata (the rules that hide events from readers), and the scavenger's progress.
ALTER TABLE streams ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;  -- 0 live, 1 soft-deleted, 2 tombstoned

CREATE TABLE stream_meta (
    stream_id       TEXT    PRIMARY KEY,
    meta_version    INTEGER NOT NULL,  -- 0-based; +1 per write (deletes too)
    truncate_before INTEGER,           -- hide versions below it (NULL: none)
    max_count       INTEGER,           -- keep only the newest max_count (NULL: all)
    max_age_us      INTEGER,           -- hide events older than this (NULL: none)
    custom          TEXT    NOT NULL   -- the user's JSON object
) WITHOUT ROWID;

-- Where the scavenger got to: the position below which it has removed what was hidden when
-- it passed (a scavenge resumes from here after a crash).
CREATE TABLE scavenge (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    next_position INTEGER NOT NULL,
    started_epoch INTEGER NOT NULL,
    running    INTEGER NOT NULL,  -- 1 while a scavenge is under way (resumed at open)
    removed    INTEGER NOT NULL   -- events removed by the scavenge under way (or the last one)
);

-- Events stay immutable, and are deleted (scavenged) or rewritten (redacted) only by the store's
-- own lifecycle jobs: such a job inserts the one row of lifecycle_pass at its start and deletes
-- it before it ends, inside its transaction — so no other transaction ever sees the row, and
-- the triggers below let a DELETE or UPDATE through only while it is there.
CREATE TABLE lifecycle_pass (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1)
);
DROP TRIGGER events_no_update;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
WHEN NOT EXISTS (SELECT 1 FROM lifecycle_pass)
BEGIN SELECT RAISE(ABORT, 'events are immutable'); END;
DROP TRIGGER events_no_delete;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
WHEN NOT EXISTS (SELECT 1 FROM lifecycle_pass)
BEGIN SELECT RAISE(ABORT, 'events are immutable'); END;
DROP TRIGGER event_tags_no_delete;
CREATE TRIGGER event_tags_no_delete BEFORE DELETE ON event_tags
WHEN NOT EXISTS (SELECT 1 FROM lifecycle_pass)
BEGIN SELECT RAISE(ABORT, 'event tags are immutable'); END;
