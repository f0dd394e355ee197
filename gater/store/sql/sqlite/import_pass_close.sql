DELETE FROM import_pass
