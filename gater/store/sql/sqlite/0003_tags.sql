-- Dynamic Consistency Boundary: tags on events, and the two indexes that answer DCB queries
-- (see store/_query.py): (tag, position) and (event type, position). Each range of either is
-- already in position order, so a query read or an append condition walks index ranges and
-- never scans the events. Stores made before this migration get both; their events have no
-- tags.
CREATE TABLE event_tags (
    tag      TEXT    NOT NULL,
    position INTEGER NOT NULL,  -- the event's global position
    PRIMARY KEY (tag, position)
) WITHOUT ROWID;

CREATE INDEX events_type_position ON events (event_type, position);

-- Tags are as immutable as the events they belong to.
CREATE TRIGGER event_tags_no_update BEFORE UPDATE ON event_tags
BEGIN SELECT RAISE(ABORT, 'event tags are immutable'); END;
CREATE TRIGGER event_tags_no_delete BEFORE DELETE ON event_tags
BEGIN SELECT RAISE(ABORT, 'event tags are immutable'); END;
