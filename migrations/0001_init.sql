-- Kyozo schema, first cut. Rows are the desired state; the Docker engine is the observed state.
-- Ids are text (branded in TypeScript: "svc_…", "dep_…", "team_…") so they read well in labels and logs.

CREATE TABLE teams (
  id                text PRIMARY KEY,
  name              text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
  quota_services    integer NOT NULL DEFAULT 50 CHECK (quota_services >= 0),
  quota_cpu_millis  integer NOT NULL DEFAULT 8000 CHECK (quota_cpu_millis >= 0),
  quota_memory_mb   integer NOT NULL DEFAULT 16384 CHECK (quota_memory_mb >= 0),
  created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
  id          text PRIMARY KEY,
  email       text NOT NULL UNIQUE CHECK (position('@' in email) > 1),
  name        text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
  team_id     text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (team_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

CREATE TABLE api_keys (
  id            text PRIMARY KEY,
  team_id       text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  user_id       text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name          text NOT NULL DEFAULT '',
  prefix        text NOT NULL UNIQUE,            -- visible part, e.g. "kz_ab12cd34"
  hash          text NOT NULL,                   -- sha256 of the whole key; the key itself is never stored
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz,
  revoked_at    timestamptz,
  last_used_at  timestamptz
);
CREATE INDEX api_keys_team_idx ON api_keys (team_id);

CREATE TABLE container_service_instances (
  id                     text PRIMARY KEY,
  team_id                text NOT NULL REFERENCES teams (id),
  name                   text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
  kind                   text,
  framework              text,
  image                  text,
  desired_state          text NOT NULL DEFAULT 'running' CHECK (desired_state IN ('running', 'stopped', 'removed')),
  status                 text NOT NULL DEFAULT 'pending'
                           CHECK (status IN ('pending', 'deploying', 'running', 'degraded', 'unhealthy', 'failed', 'stopped', 'removed')),
  container_id           text,
  container_name         text,
  current_deployment_id  text,
  internal_port          integer CHECK (internal_port BETWEEN 1 AND 65535),
  host_port              integer CHECK (host_port BETWEEN 1 AND 65535),
  cpu_millis             integer NOT NULL DEFAULT 500 CHECK (cpu_millis > 0),
  memory_mb              integer NOT NULL DEFAULT 512 CHECK (memory_mb > 0),
  env                    jsonb NOT NULL DEFAULT '{}'::jsonb,
  health_config          jsonb NOT NULL DEFAULT '{}'::jsonb,
  restart_policy         text NOT NULL DEFAULT 'on-failure' CHECK (restart_policy IN ('always', 'on-failure', 'never')),
  restart_count          integer NOT NULL DEFAULT 0,
  last_restart_at        timestamptz,
  source                 jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now(),
  deleted_at             timestamptz
);
-- A name is unique within a team among services that still exist.
CREATE UNIQUE INDEX services_team_name_idx ON container_service_instances (team_id, name) WHERE deleted_at IS NULL;
-- The loops ask "what should be running?" every pass.
CREATE INDEX services_desired_idx ON container_service_instances (desired_state) WHERE deleted_at IS NULL;

CREATE TABLE deployments (
  id             text PRIMARY KEY,
  service_id     text NOT NULL REFERENCES container_service_instances (id),
  team_id        text NOT NULL REFERENCES teams (id),
  status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'building', 'starting', 'health-check', 'switching', 'succeeded', 'failed', 'compensated', 'superseded')),
  image          text,
  context_hash   text,
  container_id   text,
  container_name text,
  error          text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  finished_at    timestamptz
);
CREATE INDEX deployments_service_idx ON deployments (service_id, created_at DESC);
CREATE INDEX deployments_team_idx ON deployments (team_id, created_at DESC);

-- Append-only: the event id is the SSE Last-Event-ID, so rows are never changed or removed.
CREATE TABLE container_deployment_events (
  id             bigserial PRIMARY KEY,
  team_id        text NOT NULL REFERENCES teams (id),
  service_id     text REFERENCES container_service_instances (id),
  deployment_id  text REFERENCES deployments (id),
  type           text NOT NULL,
  message        text NOT NULL DEFAULT '',
  data           jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deployment_events_team_idx ON container_deployment_events (team_id, id);
CREATE INDEX deployment_events_service_idx ON container_deployment_events (service_id, id);

CREATE FUNCTION kyozo_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'container_deployment_events is append-only (% rejected)', TG_OP;
END;
$$;
CREATE TRIGGER deployment_events_append_only
  BEFORE UPDATE OR DELETE ON container_deployment_events
  FOR EACH ROW EXECUTE FUNCTION kyozo_reject_change();

CREATE TABLE container_topology_detections (
  id           text PRIMARY KEY,
  team_id      text NOT NULL REFERENCES teams (id),
  service_id   text REFERENCES container_service_instances (id),
  root_path    text NOT NULL,
  result       jsonb NOT NULL,
  detected_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX topology_detections_team_idx ON container_topology_detections (team_id, detected_at DESC);

CREATE TABLE container_service_dependencies (
  id                    text PRIMARY KEY,
  service_id            text NOT NULL REFERENCES container_service_instances (id),
  depends_on_service_id text REFERENCES container_service_instances (id),
  requires              text,             -- a backing service the folder does not define: postgres, redis, …
  condition             text NOT NULL DEFAULT 'service_started'
                          CHECK (condition IN ('service_started', 'service_healthy', 'service_completed_successfully')),
  created_at            timestamptz NOT NULL DEFAULT now(),
  CHECK ((depends_on_service_id IS NULL) <> (requires IS NULL)),
  CHECK (depends_on_service_id IS NULL OR depends_on_service_id <> service_id)
);
CREATE INDEX service_dependencies_service_idx ON container_service_dependencies (service_id);
CREATE INDEX service_dependencies_target_idx ON container_service_dependencies (depends_on_service_id);

CREATE TABLE health_checks (
  id            bigserial PRIMARY KEY,
  service_id    text NOT NULL REFERENCES container_service_instances (id),
  container_id  text,
  check_type    text NOT NULL CHECK (check_type IN ('http', 'tcp', 'exec', 'docker', 'state')),
  status        text NOT NULL CHECK (status IN ('healthy', 'unhealthy', 'starting', 'unknown')),
  latency_ms    integer,
  detail        text NOT NULL DEFAULT '',
  checked_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX health_checks_service_idx ON health_checks (service_id, checked_at DESC);
CREATE INDEX health_checks_time_idx ON health_checks (checked_at);

CREATE TABLE service_permissions (
  id          text PRIMARY KEY,
  service_id  text NOT NULL REFERENCES container_service_instances (id),
  user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  permission  text NOT NULL CHECK (permission IN ('view', 'deploy', 'manage', 'admin')),
  granted_by  text REFERENCES users (id),
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (service_id, user_id, permission)
);
CREATE INDEX service_permissions_user_idx ON service_permissions (user_id);

CREATE TABLE metric_samples (
  id                  bigserial PRIMARY KEY,
  service_id          text NOT NULL REFERENCES container_service_instances (id),
  container_id        text NOT NULL,
  resolution          text NOT NULL DEFAULT '1m' CHECK (resolution IN ('1m', '1h')),
  cpu_percent         double precision NOT NULL,
  memory_bytes        bigint NOT NULL,
  memory_limit_bytes  bigint NOT NULL,
  net_rx_bytes        bigint NOT NULL DEFAULT 0,
  net_tx_bytes        bigint NOT NULL DEFAULT 0,
  block_read_bytes    bigint NOT NULL DEFAULT 0,
  block_write_bytes   bigint NOT NULL DEFAULT 0,
  pids                integer NOT NULL DEFAULT 0,
  sampled_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX metric_samples_service_idx ON metric_samples (service_id, resolution, sampled_at DESC);
CREATE INDEX metric_samples_time_idx ON metric_samples (resolution, sampled_at);
