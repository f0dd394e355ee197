-- Lets events_guard() pass this transaction's DELETE of the store's hidden events (SET LOCAL).
SELECT set_config('gater.scavenge', $1::text, true)
