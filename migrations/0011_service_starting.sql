-- `starting`: a container Kyozo (re)started that no probe has confirmed yet (never `running` unprobed).
ALTER TABLE container_service_instances DROP CONSTRAINT IF EXISTS container_service_instances_status_check;
ALTER TABLE container_service_instances ADD CONSTRAINT container_service_instances_status_check
  CHECK (status IN ('pending', 'deploying', 'starting', 'running', 'degraded', 'unhealthy', 'failed', 'stopped', 'removed'));
