INSERT INTO stream_meta (store_id, stream_id, meta_version, truncate_before, max_count, max_age_us, custom)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (store_id, stream_id) DO UPDATE SET
    meta_version = excluded.meta_version, truncate_before = excluded.truncate_before,
    max_count = excluded.max_count, max_age_us = excluded.max_age_us, custom = excluded.custom
