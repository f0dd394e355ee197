-- The tags of the batch's events, many rows per statement (as append_insert_events).
INSERT INTO event_tags (tag, position) VALUES {rows}
