-- Alert rules per team or service (issue 5): metric, comparator, threshold, for how long.
CREATE TABLE alert_rules (
  id                text PRIMARY KEY,
  team_id           text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  -- NULL: the rule applies to every service of the team.
  service_id        text REFERENCES container_service_instances (id),
  metric            text NOT NULL CHECK (metric IN ('cpu_percent', 'memory_percent', 'memory_bytes', 'pids')),
  comparator        text NOT NULL CHECK (comparator IN ('>', '>=', '<', '<=')),
  threshold         double precision NOT NULL,
  duration_seconds  integer NOT NULL DEFAULT 300 CHECK (duration_seconds >= 0),
  enabled           boolean NOT NULL DEFAULT true,
  created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_rules_team_idx ON alert_rules (team_id);

-- One row per (rule, service) currently firing; deleted when it resolves.
CREATE TABLE alert_states (
  rule_id     text NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
  service_id  text NOT NULL REFERENCES container_service_instances (id),
  fired_at    timestamptz NOT NULL,
  value       double precision NOT NULL,
  PRIMARY KEY (rule_id, service_id)
);
