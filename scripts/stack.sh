#!/usr/bin/env bash
# The local stack eventpulse runs and tests against, all on loopback:
#   broker    127.0.0.1:9092 (nisshi; or EVENTPULSE_BROKERS, then none is started)
#   redis     redis://127.0.0.1:6379
#   postgres  postgres://postgres@127.0.0.1:5432/eventpulse
#
# Usage: scripts/stack.sh up|down|status
#   up      reuse what already answers, install and start what is missing, wait
#           until each answers, create the topics and the database (idempotent)
#   down    stop only what `up` started (the pid files under .state/pids)
#   status  one line per component; exits non-zero if any is unhealthy
#
# Settings: EVENTPULSE_BROKERS (use that Kafka, start no broker),
# EVENTPULSE_BROKER_STORAGE=sqlite|memory (nisshi storage; sqlite keeps data in
# .state/broker across restarts), EVENTPULSE_NISSHI_BIN (nisshi binary to run).
set -euo pipefail

EP_NAME=stack
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=scripts/lib/common.sh
source "$here/lib/common.sh"
# shellcheck source=scripts/lib/broker.sh
source "$here/lib/broker.sh"
# shellcheck source=scripts/lib/redis.sh
source "$here/lib/redis.sh"
# shellcheck source=scripts/lib/postgres.sh
source "$here/lib/postgres.sh"

usage() {
  echo "usage: scripts/stack.sh up|down|status" >&2
  exit 2
}

up() {
  local started=$SECONDS
  ensure_state_dirs
  # A bad setting fails now, not after Postgres and Redis are set up.
  broker_external || broker_storage_url >/dev/null
  # The broker's first build is the long step of a fresh machine: it starts
  # first, and Postgres and Redis are installed and started while it compiles.
  local nisshi_build=""
  if ! broker_external && [[ -z ${EVENTPULSE_NISSHI_BIN:-} ]] &&
    ! kafka_answers "$BROKER_HOST" "$BROKER_PORT"; then
    "$EP_ROOT/scripts/install-nisshi.sh" >/dev/null &
    nisshi_build=$!
    # If Postgres or Redis fail, the build must not go on alone.
    trap 'kill "$nisshi_build" 2>/dev/null || true' EXIT
  fi
  pg_up
  redis_up
  if [[ -n $nisshi_build ]]; then
    wait "$nisshi_build" || die "building the broker failed (see the lines above)"
    trap - EXIT
  fi
  broker_up
  log "stack is up in $((SECONDS - started)) s"
  status
}

down() {
  ensure_state_dirs
  # Reverse order of `up`: producers and consumers lose the broker first.
  broker_down
  redis_down
  pg_down
  log "stack is down (only what this checkout started was stopped)"
}

# Checks every component even when an earlier one is unhealthy, so one run
# shows the whole picture.
status() {
  local healthy=0
  broker_status || healthy=1
  redis_status || healthy=1
  pg_status || healthy=1
  return "$healthy"
}

[[ $# -eq 1 ]] || usage
case "$1" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) usage ;;
esac
