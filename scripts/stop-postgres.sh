#!/usr/bin/env bash
# Stop the PostgreSQL cluster, but only if scripts/start-postgres.sh started it.
set -euo pipefail

STATE_DIR="${KYOZO_PG_STATE_DIR:-${TMPDIR:-/tmp}/kyozo-postgres}"
FLAG="$STATE_DIR/started-by-kyozo"

if [ ! -f "$FLAG" ]; then
  echo "stop-postgres: start-postgres.sh did not start PostgreSQL; leaving it running" >&2
  exit 0
fi
read -r VERSION CLUSTER <"$FLAG"
echo "stop-postgres: stopping cluster $VERSION/$CLUSTER" >&2
pg_ctlcluster "$VERSION" "$CLUSTER" stop || true
rm -f "$FLAG"
