-- Lets this import job skip positions (see 0006_import_gaps.sql); closed before it ends.
INSERT INTO import_pass (singleton) VALUES (1)
