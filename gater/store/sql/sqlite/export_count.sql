-- How many events an export's view holds up to a position (positions have gaps after a scavenge).
SELECT count(*) FROM events WHERE position <= ?
