-- Lets this transaction delete or rewrite events (see 0005_lifecycle.sql); closed before it ends.
INSERT INTO lifecycle_pass (singleton) VALUES (1)
