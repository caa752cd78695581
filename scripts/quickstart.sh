#!/usr/bin/env bash
# The README's quick start, run as written. The commands come from README.md's "Quick start" code
# block (never a private copy), so the README, CI and package.json cannot disagree:
#
#   scripts/quickstart.sh check   the README's `npm install -g pnpm@X` names package.json's packageManager pin
#   scripts/quickstart.sh line N  prints the README's command N (1: install and start, 2: tests), comment removed
#   scripts/quickstart.sh here    runs command 1 in this checkout, waits for /healthz, stops the server
#   scripts/quickstart.sh fresh   the same in a fresh clone of HEAD, with an empty global npm prefix and
#                                 a PATH holding only node, npm and basic tools (no pnpm): a fresh machine
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

readme_line() {
  # Lines of the first ```sh block after "## Quick start", without the trailing "# comment".
  awk '/^## Quick start/{q=1} q&&/^```sh/{b=1;next} b&&/^```/{exit} b{print}' README.md |
    sed -n "${1}p" | sed -E 's/[[:space:]]+#.*$//'
}

check_pin() {
  local line pinned named
  line=$(readme_line 1)
  pinned=$(node -p 'require("./package.json").packageManager')
  named=$(grep -oE 'pnpm@[^ ]+' <<<"$line" | head -1 || true)
  if [[ "$named" != "$pinned" ]]; then
    echo "README quick start installs '${named:-no pnpm}' but package.json pins '$pinned': make them the same" >&2
    exit 1
  fi
  echo "quick start pin: $named (package.json packageManager: $pinned)"
}

# Runs README command 1 in $1 (a checkout) in the background, waits for /healthz, stops it.
# $2, when given, is the PATH the command runs with (this script keeps its own tools).
run_until_healthy() {
  local dir=$1 path=${2:-$PATH} line port data log pid pgid i ok=0
  line=$(readme_line 1)
  port=${QUICKSTART_PORT:-4048}
  data=$(mktemp -d -t kyozo-quickstart-XXXXXX)
  log="$data/quickstart.log"
  echo "running README line in $dir: $line"
  # A session of its own (its id written first), so stopping it stops npm, pnpm and the server alike.
  (cd "$dir" && env -u DATABASE_URL PATH="$path" KYOZO_DATA_DIR="$data" KYOZO_PORT="$port" \
    setsid bash -c 'echo $$ >"$1"; exec bash -c "$2"' quickstart "$data/pgid" "$line" >"$log" 2>&1) &
  pid=$!
  for ((i = 0; i < 600; i++)); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >"$data/health.json" 2>/dev/null; then ok=1; break; fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.5
  done
  pgid=$(cat "$data/pgid" 2>/dev/null || true)
  if [[ -n "$pgid" ]]; then
    kill -TERM -- "-$pgid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$pgid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  # The edge (Caddy, where installed) outlives Kyozo by design: stop the one this start made.
  KYOZO_DATA_DIR="$data" PATH="$path" node "$dir/packages/cli/bin/kyozo.mjs" edge stop >/dev/null 2>&1 || true
  if [[ $ok -ne 1 ]]; then
    echo "quick start: the server never answered /healthz on port $port; its output:" >&2
    tail -n 60 "$log" >&2
    rm -rf "$data"
    return 1
  fi
  echo "/healthz: $(cat "$data/health.json")"
  rm -rf "$data"
}

fresh() {
  local work prefix tools
  work=$(mktemp -d -t kyozo-fresh-XXXXXX)
  trap 'rm -rf "$work"' RETURN
  git clone -q --no-hardlinks "$root" "$work/kyozo"
  prefix="$work/npm-prefix" && mkdir -p "$prefix"
  tools="$work/tools" && mkdir -p "$tools"
  # A fresh machine: node and npm, a shell and basic tools; no pnpm anywhere on PATH.
  for t in node npm npx sh bash env git curl cat cp mv rm ls mkdir dirname basename uname sed grep awk \
    tail head sleep kill setsid chmod ln readlink tr true false mktemp; do
    if p=$(command -v "$t"); then ln -s "$p" "$tools/$t"; fi
  done
  if PATH="$tools" command -v pnpm >/dev/null 2>&1; then echo "pnpm is still on PATH" >&2; return 1; fi
  npm_config_prefix="$prefix" run_until_healthy "$work/kyozo" "$prefix/bin:$tools"
  echo "fresh clone: ok ($(ls "$prefix/bin"))"
}

case "${1:-}" in
  check) check_pin ;;
  line) readme_line "${2:?which line}" ;;
  here) check_pin && run_until_healthy "$root" ;;
  fresh) check_pin && fresh ;;
  *) echo "usage: $0 check|line N|here|fresh" >&2; exit 2 ;;
esac
