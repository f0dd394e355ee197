-- Session-level advisory lock: one node migrates at a time; the others wait, then find
-- every migration applied.
SELECT pg_advisory_lock(hashtext('gater.migrate'))
