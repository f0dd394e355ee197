-- Delivered to listeners when (and only if) the transaction commits, in commit order.
SELECT pg_notify('gater_events', $1::text)
