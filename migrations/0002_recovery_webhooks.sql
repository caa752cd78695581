-- Recovery and webhooks (issue 5).

-- Restart bookkeeping per service, with times from Kyozo's Clock (the service row's
-- last_restart_at uses the database's now(), which tests cannot move).
CREATE TABLE service_recovery (
  service_id       text PRIMARY KEY REFERENCES container_service_instances (id),
  -- Exponent of the backoff: consecutive restarts without 10 minutes of clean running.
  backoff_level    integer NOT NULL DEFAULT 0 CHECK (backoff_level >= 0),
  last_restart_at  timestamptz,
  -- Restart times (epoch ms) still inside the intensity window (MaxT), newest first.
  restarts         jsonb NOT NULL DEFAULT '[]'::jsonb,
  -- Set when the intensity was exceeded: no more automatic restarts until a deploy or a manual start.
  gave_up_at       timestamptz,
  updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhooks (
  id               text PRIMARY KEY,
  team_id          text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  url              text NOT NULL CHECK (url ~ '^https?://'),
  secret           text NOT NULL CHECK (length(secret) >= 16),
  -- Event type patterns ("service.*", "alert.fired"); empty means every event.
  event_types      jsonb NOT NULL DEFAULT '[]'::jsonb,
  enabled          boolean NOT NULL DEFAULT true,
  -- The outbox cursor: the last event id handled (delivered, or given up after the last attempt).
  cursor_event_id  bigint NOT NULL DEFAULT 0,
  -- Failed attempts of the event after the cursor, and when the next one may run.
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_team_idx ON webhooks (team_id);

CREATE TABLE webhook_deliveries (
  id               bigserial PRIMARY KEY,
  webhook_id       text NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  event_id         bigint NOT NULL,
  attempt          integer NOT NULL CHECK (attempt >= 1),
  outcome          text NOT NULL CHECK (outcome IN ('delivered', 'failed', 'abandoned')),
  response_status  integer,
  error            text NOT NULL DEFAULT '',
  duration_ms      integer,
  attempted_at     timestamptz NOT NULL
);
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, id DESC);
