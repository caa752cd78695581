#!/usr/bin/env bash
# Stops the dockerd that start-docker.sh started, and nothing else.
set -euo pipefail

PID_FILE="${KYOZO_DOCKERD_PID_FILE:-/tmp/kyozo-dockerd.pid}"

if [ ! -f "$PID_FILE" ]; then
  echo "stop-docker: no dockerd was started by start-docker.sh; nothing to stop"
  exit 0
fi

PID="$(cat "$PID_FILE")"
# Guard against a recycled pid: only signal a process that is really dockerd.
if ! kill -0 "$PID" 2>/dev/null || [ "$(cat "/proc/$PID/comm" 2>/dev/null)" != "dockerd" ]; then
  echo "stop-docker: dockerd $PID is not running"
  rm -f "$PID_FILE"
  exit 0
fi

kill -TERM "$PID"
for _ in $(seq 1 30); do
  if ! kill -0 "$PID" 2>/dev/null; then
    rm -f "$PID_FILE"
    echo "stop-docker: stopped dockerd $PID"
    exit 0
  fi
  sleep 1
done

echo "stop-docker: dockerd $PID did not stop within 30 s" >&2
exit 1
