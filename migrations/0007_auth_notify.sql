-- Who may call has changed: tell every Kyozo process on this database, so caches of verified keys
-- drop what they hold (packages/core/src/AuthEpoch.ts). Statement-level: one notification per change.
CREATE OR REPLACE FUNCTION kyozo_auth_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('kyozo_auth', TG_TABLE_NAME);
  RETURN NULL;
END
$$;

-- Not on last_used_at: bookkeeping, written once a minute per key in use.
CREATE TRIGGER api_keys_auth_changed AFTER UPDATE OF revoked_at, expires_at, team_id, user_id, hash OR DELETE ON api_keys
  FOR EACH STATEMENT EXECUTE FUNCTION kyozo_auth_changed();
CREATE TRIGGER memberships_auth_changed AFTER UPDATE OR DELETE ON memberships
  FOR EACH STATEMENT EXECUTE FUNCTION kyozo_auth_changed();
CREATE TRIGGER users_auth_changed AFTER UPDATE OR DELETE ON users
  FOR EACH STATEMENT EXECUTE FUNCTION kyozo_auth_changed();
