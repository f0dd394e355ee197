-- The migration ledger; created before anything else, under the migration lock.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version       integer PRIMARY KEY,
    name          text    NOT NULL,
    applied_epoch bigint  NOT NULL
)
