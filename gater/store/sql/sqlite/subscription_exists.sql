SELECT 1 FROM subscriptions WHERE name = ?
