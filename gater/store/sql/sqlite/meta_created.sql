SELECT value FROM meta WHERE key = 'created_epoch'
