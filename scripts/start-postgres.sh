#!/usr/bin/env bash
# Start a local PostgreSQL for Kyozo's tests and print its DATABASE_URL.
# Idempotent: if PostgreSQL already answers, only the role and database are ensured.
# Records whether this script started the cluster, so stop-postgres.sh stops only what it started.
set -euo pipefail

PGHOST_ADDR="${PGHOST_ADDR:-127.0.0.1}"
PGPORT="${PGPORT:-5432}"
ROLE="${KYOZO_PG_ROLE:-kyozo}"
PASSWORD="${KYOZO_PG_PASSWORD:-kyozo}"
DB="${KYOZO_PG_DATABASE:-kyozo_test}"
STATE_DIR="${KYOZO_PG_STATE_DIR:-${TMPDIR:-/tmp}/kyozo-postgres}"
FLAG="$STATE_DIR/started-by-kyozo"

log() { echo "start-postgres: $*" >&2; }

as_postgres() {
  if [ "$(id -u)" = "0" ]; then
    if command -v runuser >/dev/null 2>&1; then runuser -u postgres -- "$@"; else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; fi
  elif [ "$(id -un)" = "postgres" ]; then
    "$@"
  else
    sudo -u postgres "$@"
  fi
}

answering() { pg_isready -q -h "$PGHOST_ADDR" -p "$PGPORT" >/dev/null 2>&1; }

mkdir -p "$STATE_DIR"

if ! command -v pg_ctlcluster >/dev/null 2>&1 && ! answering; then
  log "PostgreSQL is not installed: installing it (apt-get install -y postgresql)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y postgresql >/dev/null || { apt-get update >/dev/null && apt-get install -y postgresql >/dev/null; }
fi

if ! answering; then
  # The newest installed major version, and its first cluster (normally "main").
  VERSION="$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)"
  if [ -z "$VERSION" ]; then
    log "no PostgreSQL server under /usr/lib/postgresql; install the postgresql package"
    exit 1
  fi
  CLUSTER="$(pg_lsclusters -h 2>/dev/null | awk -v v="$VERSION" '$1 == v { print $2; exit }')"
  if [ -z "$CLUSTER" ]; then
    CLUSTER=main
    log "creating cluster $VERSION/$CLUSTER"
    pg_createcluster "$VERSION" "$CLUSTER" --port "$PGPORT" >/dev/null
  fi
  log "starting cluster $VERSION/$CLUSTER"
  pg_ctlcluster "$VERSION" "$CLUSTER" start
  printf '%s %s\n' "$VERSION" "$CLUSTER" >"$FLAG"
  for _ in $(seq 1 60); do
    answering && break
    sleep 0.5
  done
  if ! answering; then
    log "PostgreSQL $VERSION/$CLUSTER did not answer on $PGHOST_ADDR:$PGPORT within 30 s; see /var/log/postgresql/"
    exit 1
  fi
else
  log "PostgreSQL already answers on $PGHOST_ADDR:$PGPORT; leaving it as it is"
fi

# Role and database, created only when missing. Names are fixed identifiers, not user input.
as_postgres psql -v ON_ERROR_STOP=1 -qAt -d postgres <<SQL >/dev/null
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE "$ROLE" LOGIN PASSWORD '$PASSWORD';
  END IF;
END
\$\$;
SQL
if [ "$(as_postgres psql -qAt -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
  log "creating database $DB owned by $ROLE"
  as_postgres createdb -O "$ROLE" "$DB"
fi

echo "postgres://$ROLE:$PASSWORD@$PGHOST_ADDR:$PGPORT/$DB"
