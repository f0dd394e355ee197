-- One SQLite database per store. Positions are assigned by the store's single writer thread;
-- the triggers make the database itself refuse anything that would break the log.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE events (
    position      INTEGER PRIMARY KEY,      -- 0-based global position, dense
    stream_id     TEXT    NOT NULL,
    version       INTEGER NOT NULL,         -- 0-based version in its stream
    event_id      TEXT    NOT NULL UNIQUE,  -- lower-case hyphenated UUID
    event_type    TEXT    NOT NULL,
    created_epoch INTEGER NOT NULL,         -- microseconds since the Unix epoch
    record        BLOB    NOT NULL          -- the exesdb.v1.EventRecord, serialized
);
CREATE UNIQUE INDEX events_stream_version ON events (stream_id, version);

CREATE TABLE streams (
    stream_id     TEXT PRIMARY KEY,
    version       INTEGER NOT NULL,
    created_epoch INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE snapshots (
    source_uuid    TEXT    NOT NULL,
    stream_uuid    TEXT    NOT NULL,
    source_version INTEGER NOT NULL,
    source_type    TEXT    NOT NULL,
    data           BLOB    NOT NULL,
    metadata       BLOB    NOT NULL,
    created_epoch  INTEGER NOT NULL,
    PRIMARY KEY (source_uuid, stream_uuid, source_version)
) WITHOUT ROWID;
CREATE INDEX snapshots_by_stream ON snapshots (stream_uuid, source_uuid, source_version);

-- Events are immutable and the log has no holes: a new event takes exactly the next position
-- and the next version of its stream.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are immutable'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are immutable'); END;
CREATE TRIGGER events_dense BEFORE INSERT ON events
-- (max() alone in its subquery, so SQLite reads it off the end of the primary key)
WHEN NEW.position <> coalesce((SELECT max(position) FROM events), -1) + 1
BEGIN SELECT RAISE(ABORT, 'position must be the next global position'); END;
