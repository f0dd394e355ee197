-- A stream's version and lifecycle state, and its metadata (NULLs when it has none).
SELECT s.version, s.deleted, m.meta_version, m.truncate_before, m.max_count, m.max_age_us, m.custom
FROM (SELECT ? AS stream_id) AS k
LEFT JOIN streams s ON s.stream_id = k.stream_id
LEFT JOIN stream_meta m ON m.stream_id = k.stream_id
