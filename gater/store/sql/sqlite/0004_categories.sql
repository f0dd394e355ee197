-- Reads and subscriptions by stream prefix (store/_query.py): an index on each event's
-- category — its stream id up to and including the first "-" ("order-1" → "order-"; "" when
-- there is none) — and position. A range of it is one category's events in position order,
-- so a read of "order-*" walks that range and never scans the events. Queries must spell
-- the expression exactly so (store/_query._category_expr) for SQLite to use the index.
CREATE INDEX events_category_position ON events (substr(stream_id, 1, instr(stream_id, '-')), position);
