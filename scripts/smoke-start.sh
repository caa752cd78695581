#!/usr/bin/env bash
# Starts Kyozo exactly as the README's first command does (embedded PGlite, Docker if present),
# checks /healthz and /readyz, then stops it. Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
data=$(mktemp -d -t kyozo-smoke-XXXXXX)
port=${KYOZO_SMOKE_PORT:-4049}
log="$data/server.log"
env -u DATABASE_URL KYOZO_DATA_DIR="$data" KYOZO_PORT="$port" node packages/server/bin/kyozo-server.mjs >"$log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  # The edge (Caddy) outlives Kyozo by design: stop the one this smoke start made.
  KYOZO_DATA_DIR="$data" node packages/cli/bin/kyozo.mjs edge stop >/dev/null 2>&1 || true
  rm -rf "$data"
}
trap cleanup EXIT
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >"$data/ready.json" 2>/dev/null; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "server exited early:"; cat "$log"; exit 1; fi
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/healthz"; echo
cat "$data/ready.json"; echo
grep -q '"status":"ready"' "$data/ready.json" || { echo "not ready"; cat "$log"; exit 1; }
grep -q '"database":"ok"' "$data/ready.json"
if [ "${KYOZO_REQUIRE_CADDY:-}" = "1" ]; then
  grep -q '"kind":"caddy"' "$data/ready.json" || { echo "edge is not caddy"; cat "$log"; exit 1; }
fi
curl -fsS "http://127.0.0.1:$port/" | grep -q '<div id="app">' || { echo "no dashboard at /"; exit 1; }
echo "smoke: ok"
