INSERT INTO scavenges (store_id, next_position, started_epoch, running, removed) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (store_id) DO UPDATE SET next_position = excluded.next_position,
    started_epoch = excluded.started_epoch, running = excluded.running, removed = excluded.removed
