-- Node health: the database answers.
SELECT 1
