-- $2 / $3: optional source and stream filters (NULL: any); ($4, $5, $6): the page's
-- exclusive lower bound in key order (('', '', -1) for the first page).
SELECT source_uuid, stream_uuid, source_version, source_type, created_epoch
FROM snapshots
WHERE store_id = $1
  AND ($2::text IS NULL OR source_uuid = $2::text)
  AND ($3::text IS NULL OR stream_uuid = $3::text)
  AND (source_uuid, stream_uuid, source_version) > ($4::text, $5::text, $6::bigint)
ORDER BY source_uuid, stream_uuid, source_version
LIMIT $7
