-- How many events an export's view holds up to a position (positions have gaps after a scavenge).
SELECT count(*) FROM events WHERE store_id = $1 AND position <= $2
