-- A lower checkpoint than the stored one is ignored (and the trigger refuses it anyway).
UPDATE subscriptions SET state = ?, checkpoint = ?, updated_epoch = ?
WHERE name = ? AND checkpoint <= ?
