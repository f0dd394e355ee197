-- Many rows per statement: see _writer.py for why not executemany.
INSERT INTO events (position, stream_id, version, event_id, event_type, created_epoch, record)
VALUES {rows}
