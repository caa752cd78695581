-- Replicas per service (issue 10): separate containers of the current deployment, load-balanced by
-- the edge. Quotas count cpu_millis and memory_mb once per replica.
ALTER TABLE container_service_instances
  ADD COLUMN IF NOT EXISTS replicas integer NOT NULL DEFAULT 1 CHECK (replicas BETWEEN 1 AND 20);
