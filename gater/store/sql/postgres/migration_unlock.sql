SELECT pg_advisory_unlock(hashtext('gater.migrate'))
