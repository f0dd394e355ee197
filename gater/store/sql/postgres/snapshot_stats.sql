SELECT count(*) AS snapshot_count,
       coalesce(sum(octet_length(data) + octet_length(metadata)), 0) AS snapshot_bytes
FROM snapshots WHERE store_id = $1
