-- Rows that in-process caches hold have changed: tell every Kyozo process on this database, so the
-- caches drop what they hold (packages/core/src/ChangeEpoch.ts). Statement-level: one notification
-- per change, the channel named by the trigger's argument.
CREATE OR REPLACE FUNCTION kyozo_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify(TG_ARGV[0], TG_TABLE_NAME);
  RETURN NULL;
END
$$;

-- Who may call. Not on last_used_at: bookkeeping, written once a minute per key in use.
CREATE TRIGGER api_keys_auth_changed AFTER UPDATE OF revoked_at, expires_at, team_id, user_id, hash OR DELETE ON api_keys
  FOR EACH STATEMENT EXECUTE FUNCTION kyozo_changed('kyozo_auth');
CREATE TRIGGER memberships_auth_changed AFTER UPDATE OR DELETE ON memberships
  FOR EACH STATEMENT EXECUTE FUNCTION kyozo_changed('kyozo_auth');
CREATE TRIGGER users_auth_changed AFTER UPDATE OR DELETE ON users
  FOR EACH STATEMENT EXECUTE FUNCTION kyozo_changed('kyozo_auth');

-- The rows of services, as the service list shows them.
CREATE TRIGGER services_changed AFTER INSERT OR UPDATE OR DELETE ON container_service_instances
  FOR EACH STATEMENT EXECUTE FUNCTION kyozo_changed('kyozo_services');
