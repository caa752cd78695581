-- A redeploy whose desired spec equals what runs ends 'unchanged': nothing was created.
ALTER TABLE deployments DROP CONSTRAINT IF EXISTS deployments_status_check;
ALTER TABLE deployments ADD CONSTRAINT deployments_status_check
  CHECK (status IN ('pending', 'building', 'starting', 'health-check', 'switching', 'succeeded', 'failed', 'compensated', 'superseded', 'unchanged'));
