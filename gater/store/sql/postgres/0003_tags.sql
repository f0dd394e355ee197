-- 0003: Dynamic Consistency Boundary: tags on events, and the two indexes that answer DCB
-- queries (see store/_query.py): (store, tag, position) and (store, event type, position).
-- Each range of either is already in position order, so a query read or an append condition
-- walks index ranges and never scans the events. Existing events get no tags.
CREATE TABLE event_tags (
    store_id text COLLATE "C" NOT NULL REFERENCES stores (store_id) ON DELETE CASCADE,
    tag      text COLLATE "C" NOT NULL,
    position bigint NOT NULL CHECK (position >= 0),
    PRIMARY KEY (store_id, tag, position)
);

CREATE INDEX events_type_position ON events (store_id, event_type, position);

-- Tags are as immutable as their events: the same guard (deletes only while removing the
-- whole store).
CREATE TRIGGER event_tags_no_update_delete
    BEFORE UPDATE OR DELETE ON event_tags
    FOR EACH ROW EXECUTE FUNCTION events_guard();

CREATE TRIGGER event_tags_no_truncate
    BEFORE TRUNCATE ON event_tags
    FOR EACH STATEMENT EXECUTE FUNCTION events_guard();
