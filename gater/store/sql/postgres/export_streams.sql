-- An export's stream lifecycle states: every stream with metadata (a delete writes some too),
-- with its version and deletion state (-1, 0 when it never had events).
SELECT m.stream_id, coalesce(s.version, -1) AS version, coalesce(s.deleted, 0) AS deleted, m.meta_version,
       m.truncate_before, m.max_count, m.max_age_us, m.custom
FROM stream_meta m LEFT JOIN streams s ON s.store_id = m.store_id AND s.stream_id = m.stream_id
WHERE m.store_id = $1
ORDER BY m.stream_id
