SELECT next_position, started_epoch, running, removed FROM scavenges WHERE store_id = $1
