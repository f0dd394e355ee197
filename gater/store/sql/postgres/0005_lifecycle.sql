-- 0005: stream lifecycle (store/_lifecycle.py, docs/lifecycle.md): a stream's deletion state,
-- its metadata (the rules that hide events from readers), and the scavenger's progress.
ALTER TABLE streams ADD COLUMN deleted smallint NOT NULL DEFAULT 0;  -- 0 live, 1 soft-deleted, 2 tombstoned

CREATE TABLE stream_meta (
    store_id        text COLLATE "C" NOT NULL REFERENCES stores (store_id) ON DELETE CASCADE,
    stream_id       text COLLATE "C" NOT NULL,
    meta_version    bigint NOT NULL,  -- 0-based; +1 per write (deletes too)
    truncate_before bigint,           -- hide versions below it (NULL: none)
    max_count       bigint,           -- keep only the newest max_count (NULL: all)
    max_age_us      bigint,           -- hide events older than this (NULL: none)
    custom          text   NOT NULL,  -- the user's JSON object
    PRIMARY KEY (store_id, stream_id)
);

-- Where the scavenger of each store got to (a scavenge resumes from here after a crash).
CREATE TABLE scavenges (
    store_id      text COLLATE "C" PRIMARY KEY REFERENCES stores (store_id) ON DELETE CASCADE,
    next_position bigint  NOT NULL,
    started_epoch bigint  NOT NULL,
    running       boolean NOT NULL,
    removed       bigint  NOT NULL
);

-- Events stay immutable for every path but two, each allowed for one store and one
-- transaction (set_config(..., true) is SET LOCAL): removing the store (gater.removing_store,
-- as before), the scavenger's DELETE of hidden events (gater.scavenge) and redaction's
-- UPDATE of one record (gater.redact).
CREATE OR REPLACE FUNCTION events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.store_id = current_setting('gater.removing_store', true)
           OR OLD.store_id = current_setting('gater.scavenge', true) THEN
            RETURN OLD;
        END IF;
    ELSIF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'events' THEN
        IF OLD.store_id = current_setting('gater.redact', true)
           AND NEW.store_id = OLD.store_id AND NEW.position = OLD.position
           AND NEW.stream_id = OLD.stream_id AND NEW.version = OLD.version
           AND NEW.event_id = OLD.event_id AND NEW.event_type = OLD.event_type THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'events are immutable: % on events is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;
