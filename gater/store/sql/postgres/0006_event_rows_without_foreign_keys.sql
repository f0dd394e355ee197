-- 0006: events and event_tags rows no longer check a foreign key to stores on every insert.
--
-- Why: the check is a trigger per inserted row (a look-up and a KEY SHARE lock of the stores
-- row), about a third of an event's INSERT (EXPLAIN ANALYZE of a 5,000-event import batch:
-- 42-50 ms of 130-200), and it guards nothing the writers do not already: every insert of
-- events or tags (append, import) runs under the store's advisory lock after reading the
-- stores row, and removing a store takes the same lock first (store_lock.sql), so no insert
-- can follow a removal into a store that is gone.
--
-- What the foreign keys also did, removing a store's events with the stores row (ON DELETE
-- CASCADE), a trigger on stores now does, in the same statement — for this version's nodes and
-- for any older node still running against this database, whose removal relies on it. Its
-- DELETEs pass events_guard() only in the removal's own transaction (gater.removing_store).
CREATE FUNCTION stores_remove_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM event_tags WHERE store_id = OLD.store_id;
    DELETE FROM events WHERE store_id = OLD.store_id;
    RETURN OLD;
END
$$;

CREATE TRIGGER stores_remove_events
    AFTER DELETE ON stores
    FOR EACH ROW EXECUTE FUNCTION stores_remove_events();

ALTER TABLE events DROP CONSTRAINT events_store_id_fkey;
ALTER TABLE event_tags DROP CONSTRAINT event_tags_store_id_fkey;
