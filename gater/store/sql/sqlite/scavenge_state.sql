SELECT next_position, started_epoch, running, removed FROM scavenge WHERE singleton = 1
