-- Custom domains a team adds to a service (issue 10): the edge routes each by Host to the
-- service's upstreams. The hostname is the primary key, so a name belongs to one service across
-- ALL teams, and two teams adding it at once cannot both win (the second insert conflicts).
CREATE TABLE service_domains (
  hostname   text PRIMARY KEY CHECK (hostname = lower(hostname) AND length(hostname) <= 253),
  service_id text NOT NULL REFERENCES container_service_instances (id) ON DELETE CASCADE,
  team_id    text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX service_domains_service_idx ON service_domains (service_id);
CREATE INDEX service_domains_team_idx ON service_domains (team_id);

-- Services are deleted softly (deleted_at): their domains go with the deletion, whichever path
-- deletes, so the names are free at once for anyone.
CREATE OR REPLACE FUNCTION kyozo_release_service_domains() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM service_domains WHERE service_id = NEW.id;
  RETURN NULL;
END
$$;
CREATE TRIGGER services_release_domains AFTER UPDATE OF deleted_at ON container_service_instances
  FOR EACH ROW WHEN (NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL)
  EXECUTE FUNCTION kyozo_release_service_domains();
