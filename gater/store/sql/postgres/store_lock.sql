-- The per-store writer lock, held until the transaction ends (commit or rollback). The
-- two-key form keeps gater's locks apart from any other user of advisory locks; a hash
-- collision between two store ids only serialises their writers, it never breaks order.
SELECT pg_advisory_xact_lock(hashtext('gater.store'), hashtext($1::text))
