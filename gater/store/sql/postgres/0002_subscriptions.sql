-- 0002: persistent subscriptions, shared by every node of the cluster.
--
-- definition/state are the JSON the subscriptions layer writes; checkpoint is a column too so
-- the database refuses to move it backwards. The dispatch of one subscription is owned by one
-- node at a time: owner_node holds a lease until lease_until (database clock); fence grows
-- with every change of owner and state writes must carry the current fence, so a node that
-- lost its lease (paused, partitioned) cannot overwrite what its successor wrote.
CREATE TABLE subscriptions (
    store_id      text COLLATE "C" NOT NULL REFERENCES stores (store_id) ON DELETE CASCADE,
    name          text COLLATE "C" NOT NULL,
    definition    jsonb  NOT NULL,
    state         jsonb  NOT NULL,
    checkpoint    bigint NOT NULL,
    owner_node    text,
    owner_address text,
    lease_until   timestamptz,
    fence         bigint NOT NULL DEFAULT 0,
    created_epoch bigint NOT NULL,
    updated_epoch bigint NOT NULL,
    PRIMARY KEY (store_id, name)
);

CREATE FUNCTION subscriptions_checkpoint_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.checkpoint < OLD.checkpoint THEN
        RAISE EXCEPTION 'a checkpoint never moves backwards (% -> %)', OLD.checkpoint, NEW.checkpoint
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER subscriptions_checkpoint_forward
    BEFORE UPDATE OF checkpoint ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION subscriptions_checkpoint_forward();
