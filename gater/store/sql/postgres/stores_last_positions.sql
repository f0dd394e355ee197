SELECT store_id, last_position FROM stores WHERE store_id = ANY($1::text[])
