UPDATE subscriptions SET definition = ?, updated_epoch = ? WHERE name = ?
