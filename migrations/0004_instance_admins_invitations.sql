-- Instance admins (a flag on the user), invitations to teams, and default quotas that hold at least
-- 50 services of the default size (500 millicores, 512 MB): 100 services, 50 cores, 50 GB.

ALTER TABLE users ADD COLUMN instance_admin boolean NOT NULL DEFAULT false;
-- The first user of an existing install is the bootstrap admin: it becomes the instance admin.
UPDATE users SET instance_admin = true
  WHERE id = (SELECT id FROM users ORDER BY created_at, id LIMIT 1)
    AND NOT EXISTS (SELECT 1 FROM users WHERE instance_admin);

ALTER TABLE teams ALTER COLUMN quota_services SET DEFAULT 100;
ALTER TABLE teams ALTER COLUMN quota_cpu_millis SET DEFAULT 50000;
ALTER TABLE teams ALTER COLUMN quota_memory_mb SET DEFAULT 51200;

-- Someone from outside a team joins it only by accepting an invitation.
CREATE TABLE team_invitations (
  id          text PRIMARY KEY,
  team_id     text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
  invited_by  text REFERENCES users (id) ON DELETE SET NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (team_id, user_id)
);
CREATE INDEX team_invitations_user_idx ON team_invitations (user_id);
