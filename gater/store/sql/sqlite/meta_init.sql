INSERT INTO meta (key, value) VALUES ('store_id', ?), ('created_epoch', ?)
