#!/usr/bin/env bash
# Makes sure a Docker engine answers. If none does, installs docker.io (and busybox-static for the
# base images) when dockerd is missing, starts dockerd in the background and waits for it (≤ 60 s).
# Only a dockerd started here is recorded in the pid file, so stop-docker.sh never stops another one.
set -euo pipefail

PID_FILE="${KYOZO_DOCKERD_PID_FILE:-/tmp/kyozo-dockerd.pid}"
LOG_FILE="${KYOZO_DOCKERD_LOG:-/tmp/kyozo-dockerd.log}"

if docker info >/dev/null 2>&1; then
  echo "start-docker: a Docker engine is already running (not started by this script)"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  echo "start-docker: installing docker.io and busybox-static"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y docker.io busybox-static
elif ! [ -x /bin/busybox ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y busybox-static || true
fi

start_once() {
  # A dockerd that was just stopped can leave its pid file and containerd behind for a moment;
  # wait for them so the new daemon does not exit at once.
  for _ in $(seq 1 20); do
    if [ ! -e /var/run/docker.pid ] || ! kill -0 "$(cat /var/run/docker.pid 2>/dev/null)" 2>/dev/null; then break; fi
    sleep 0.5
  done
  # Every Kyozo team gets a network; Docker's default pools hold about 30, which a test run (or a
  # host with many teams) uses up ("could not find an available, non-overlapping IPv4 address
  # pool"). A /16 cut into /24s holds 256, unless the daemon's own config sets pools.
  local pool_args=()
  if ! grep -qs default-address-pools /etc/docker/daemon.json; then
    pool_args=(--default-address-pool "${KYOZO_DOCKER_ADDRESS_POOL:-base=10.213.0.0/16,size=24}")
  fi
  nohup dockerd "${pool_args[@]}" >>"$LOG_FILE" 2>&1 &
  echo $! >"$PID_FILE"
  echo "start-docker: started dockerd (pid $(cat "$PID_FILE"), log $LOG_FILE)"
}

if [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null && [ "$(cat /proc/"$(cat "$PID_FILE")"/comm 2>/dev/null)" = dockerd ]; then
  echo "start-docker: dockerd $(cat "$PID_FILE") from an earlier run is starting; waiting"
else
  start_once
fi

attempts=1
for _ in $(seq 1 90); do
  if docker info >/dev/null 2>&1; then
    echo "start-docker: engine ready"
    exit 0
  fi
  if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
    if [ "$attempts" -lt 4 ]; then
      attempts=$((attempts + 1))
      echo "start-docker: dockerd exited early; retrying (attempt $attempts)"
      sleep 2
      start_once
      continue
    fi
    echo "start-docker: dockerd exited; last lines of $LOG_FILE:" >&2
    tail -n 20 "$LOG_FILE" >&2 || true
    rm -f "$PID_FILE"
    exit 1
  fi
  sleep 1
done

echo "start-docker: dockerd did not answer within 90 s; see $LOG_FILE" >&2
exit 1
