INSERT INTO schema_migrations (version, name, applied_epoch) VALUES ($1, $2, $3)
