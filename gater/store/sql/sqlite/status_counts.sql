SELECT (SELECT count(*) FROM streams), (SELECT count(*) FROM snapshots),
       (SELECT count(*) FROM subscriptions)
