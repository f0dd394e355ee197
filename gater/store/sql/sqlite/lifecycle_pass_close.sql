DELETE FROM lifecycle_pass
