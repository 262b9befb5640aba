-- 0004: when each service last started. The registry writes its start when it
-- subscribes to node health; the liveness rule (common/liveness.h) gives
-- nodes a grace period from then, and the scheduler reads it here so that it
-- computes the same state as the registry.
CREATE TABLE IF NOT EXISTS service_starts (
  service    text PRIMARY KEY,
  started_ms bigint NOT NULL
);
