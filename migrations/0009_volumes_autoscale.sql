-- Declared volumes of a service (issue 10, "nothing lost"): compose named volumes as
-- [{"name": "...", "target": "/path"}]. Every container of the service mounts the same Docker
-- volume per name, so data outlives redeploys, rollbacks, restarts and scaling.
ALTER TABLE container_service_instances
  ADD COLUMN IF NOT EXISTS volumes jsonb NOT NULL DEFAULT '[]'::jsonb;

-- Autoscaling (issue 10): {"minReplicas", "maxReplicas", "targetCpuPercent"?, "targetMemoryPercent"?,
-- "stabilizationSeconds"?}, or NULL for a fixed replica count.
ALTER TABLE container_service_instances
  ADD COLUMN IF NOT EXISTS autoscale jsonb;
