-- A deleted stream reads as missing (-1).
SELECT CASE WHEN deleted = 0 THEN version ELSE -1 END FROM streams WHERE store_id = $1 AND stream_id = $2
