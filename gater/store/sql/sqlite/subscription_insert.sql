INSERT INTO subscriptions (name, definition, state, checkpoint, created_epoch, updated_epoch)
VALUES (?, ?, ?, ?, ?, ?)
