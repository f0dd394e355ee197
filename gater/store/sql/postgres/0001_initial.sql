-- 0001: stores, events, streams, snapshots, the cluster id.
--
-- One set of tables for every store, keyed by store_id (not a schema per store): creating or
-- removing a store is a plain transactional INSERT/DELETE, migrations run once for all
-- stores, and every node sees the same schema without run-time DDL.
-- Identifiers use COLLATE "C" so listings sort by code point, as Python and SQLite do.

CREATE TABLE cluster (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    cluster_id    uuid    NOT NULL,
    created_epoch bigint  NOT NULL
);
-- gen_random_uuid() is a version-4 UUID (built in since PostgreSQL 13).
INSERT INTO cluster (cluster_id, created_epoch)
VALUES (gen_random_uuid(), (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);

CREATE TABLE stores (
    store_id      text COLLATE "C" PRIMARY KEY,
    created_epoch bigint NOT NULL,
    -- Maintained by the append transaction, under the store's advisory lock:
    last_position bigint NOT NULL DEFAULT -1,
    stream_count  bigint NOT NULL DEFAULT 0,
    event_bytes   bigint NOT NULL DEFAULT 0
);

CREATE TABLE events (
    store_id      text COLLATE "C" NOT NULL REFERENCES stores (store_id) ON DELETE CASCADE,
    position      bigint NOT NULL CHECK (position >= 0),
    stream_id     text COLLATE "C" NOT NULL,
    version       bigint NOT NULL CHECK (version >= 0),
    event_id      uuid   NOT NULL,
    event_type    text   NOT NULL,
    created_epoch bigint NOT NULL,
    record        bytea  NOT NULL,
    CONSTRAINT events_pkey PRIMARY KEY (store_id, position),
    CONSTRAINT events_stream_version_key UNIQUE (store_id, stream_id, version),
    CONSTRAINT events_event_id_key UNIQUE (store_id, event_id)
);

CREATE TABLE streams (
    store_id  text COLLATE "C" NOT NULL REFERENCES stores (store_id) ON DELETE CASCADE,
    stream_id text COLLATE "C" NOT NULL,
    version   bigint NOT NULL CHECK (version >= 0),
    PRIMARY KEY (store_id, stream_id)
);

CREATE TABLE snapshots (
    store_id       text COLLATE "C" NOT NULL REFERENCES stores (store_id) ON DELETE CASCADE,
    source_uuid    text COLLATE "C" NOT NULL,
    stream_uuid    text COLLATE "C" NOT NULL,
    source_version bigint NOT NULL CHECK (source_version >= 0),
    source_type    text   NOT NULL,
    data           bytea  NOT NULL,
    metadata       bytea  NOT NULL,
    created_epoch  bigint NOT NULL,
    PRIMARY KEY (store_id, source_uuid, stream_uuid, source_version)
);
CREATE INDEX snapshots_by_stream ON snapshots (store_id, stream_uuid, source_uuid, source_version);

-- Events are immutable: no UPDATE, no DELETE, no TRUNCATE. The only exception is removing a
-- whole store, which deletes the stores row (cascading to its events) in a transaction that
-- first runs SET LOCAL gater.removing_store = '<store id>'; the guard lets through deletes
-- of that store's rows only.
CREATE FUNCTION events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.store_id = current_setting('gater.removing_store', true) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'events are immutable: % on events is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER events_no_update_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_guard();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_guard();
