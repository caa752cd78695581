-- Dashboard sign-in sessions. The browser holds a random session token in an HttpOnly cookie; the
-- row keeps only its sha256 and the API key sealed (AES-256-GCM) under a key derived from that token,
-- so the database alone never yields a usable key. Every request is then authenticated as the key
-- itself: a revoked or expired key ends its sessions at once.
CREATE TABLE dashboard_sessions (
  id          text PRIMARY KEY,
  token_hash  text NOT NULL UNIQUE,
  api_key_id  text NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
  sealed_key  text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL
);
CREATE INDEX dashboard_sessions_key_idx ON dashboard_sessions (api_key_id);
CREATE INDEX dashboard_sessions_expiry_idx ON dashboard_sessions (expires_at);
