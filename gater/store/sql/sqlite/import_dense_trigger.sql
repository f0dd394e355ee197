-- The text of the positions' trigger (0007), which an import job drops and creates again.
SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'events_dense'
