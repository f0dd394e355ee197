SELECT name, definition, state FROM subscriptions ORDER BY name
