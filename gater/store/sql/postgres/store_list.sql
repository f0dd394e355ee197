SELECT store_id, created_epoch FROM stores ORDER BY store_id
