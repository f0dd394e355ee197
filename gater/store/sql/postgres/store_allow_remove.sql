-- Lets events_guard() pass the cascaded DELETE of this store's events, for this
-- transaction only (set_config(..., true) is SET LOCAL).
SELECT set_config('gater.removing_store', $1::text, true)
