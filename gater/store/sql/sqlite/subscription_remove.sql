DELETE FROM subscriptions WHERE name = ?
