#!/usr/bin/env bash
# The demo behind `make demo`: start the whole stack with `owlmetry dev`, wait until it is
# ready, run the headline job with its live progress bar, show the run list and the
# schedules, then stop the stack. Needs only the binary built by `make build` and the
# PostgreSQL server binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=./bin/owlmetry
# A private data dir the postgres user can reach (as root, Postgres runs as postgres).
base=${TMPDIR:-/tmp}
[ "$(id -u)" = 0 ] && base=/var/tmp
data=$(mktemp -d "$base/owlmetry-demo-XXXXXX")
chmod 755 "$data"
log="$data.log"

cleanup() {
  if [ -n "${dev_pid:-}" ] && kill -0 "$dev_pid" 2>/dev/null; then
    kill -INT "$dev_pid" 2>/dev/null || true
    wait "$dev_pid" 2>/dev/null || true
  fi
  rm -rf "$data" "$log"
}
trap cleanup EXIT

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "starting owlmetry dev (Postgres, migrations, demo data, emulators, server)"
"$bin" dev --data-dir "$data" --port 0 --no-login >/dev/null 2>"$log" &
dev_pid=$!
if ! env_lines=$("$bin" dev env --data-dir "$data" --timeout 120s); then
  echo "owlmetry dev did not become ready; its log:" >&2
  tail -n 30 "$log" >&2
  exit 1
fi
eval "$env_lines"
echo "API $OWLMETRY_ENDPOINT, project $OWLMETRY_PROJECT_ID"

step "owlmetry ratings sync --wait"
"$bin" ratings sync --wait

step "owlmetry jobs list"
"$bin" jobs list

step "owlmetry system jobs schedules"
"$bin" system jobs schedules

step "stopping the stack"
kill -INT "$dev_pid"
wait "$dev_pid"
dev_pid=
echo "done"
