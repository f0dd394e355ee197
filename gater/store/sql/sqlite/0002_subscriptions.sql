-- Persistent subscriptions: what they select (definition) and how far delivery got (state),
-- both JSON. The checkpoint is a column too so the database refuses to move it backwards.
CREATE TABLE subscriptions (
    name          TEXT PRIMARY KEY,
    definition    TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    checkpoint    INTEGER NOT NULL,
    created_epoch INTEGER NOT NULL,
    updated_epoch INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER subscriptions_checkpoint_forward BEFORE UPDATE OF checkpoint ON subscriptions
WHEN NEW.checkpoint < OLD.checkpoint
BEGIN SELECT RAISE(ABORT, 'a checkpoint never moves backwards'); END;
