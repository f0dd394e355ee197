SELECT cluster_id::text FROM cluster
