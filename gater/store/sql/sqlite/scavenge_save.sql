INSERT INTO scavenge (singleton, next_position, started_epoch, running, removed) VALUES (1, ?, ?, ?, ?)
ON CONFLICT (singleton) DO UPDATE SET next_position = excluded.next_position,
    started_epoch = excluded.started_epoch, running = excluded.running, removed = excluded.removed
