INSERT INTO stream_meta (stream_id, meta_version, truncate_before, max_count, max_age_us, custom)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (stream_id) DO UPDATE SET
    meta_version = excluded.meta_version, truncate_before = excluded.truncate_before,
    max_count = excluded.max_count, max_age_us = excluded.max_age_us, custom = excluded.custom
