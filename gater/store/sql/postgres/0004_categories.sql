-- 0004: reads and subscriptions by stream prefix (store/_query.py): an index on each event's
-- category — its stream id up to and including the first "-" ("order-1" → "order-"; "" when
-- there is none) — and position, per store. A range of it is one category's events in
-- position order, so a read of "order-*" walks that range and never scans the events.
-- Queries must spell the expression exactly so (store/_query._category_expr) for the planner
-- to use the index.
CREATE INDEX events_category_position
    ON events (store_id, substr(stream_id, 1, strpos(stream_id, '-')), position);
