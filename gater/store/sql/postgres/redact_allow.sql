-- Lets events_guard() pass this transaction's UPDATE of one record of the store (SET LOCAL).
SELECT set_config('gater.redact', $1::text, true)
