#!/usr/bin/env bash
# End-to-end check of the Compose stack on a machine with Docker (the `docker`
# job of .github/workflows/ci.yml; not .ci/run, whose machines have no Docker
# engine): builds and starts everything with two consumers, produces events,
# and checks that they reach Postgres, that Prometheus scrapes both consumers
# and loaded the rules, and that Grafana is up. Removes the stack and its
# volumes at the end unless KEEP_STACK=1.
#
# Usage: infra/smoke-test.sh   (from anywhere; needs docker compose v2)
# Settings: SMOKE_EVENTS (2000), SMOKE_PROJECT (compose project name),
# SMOKE_SKIP_BUILD=1, KEEP_STACK=1.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
project=${SMOKE_PROJECT:-eventpulse-smoke}
events=${SMOKE_EVENTS:-2000}
compose=(docker compose -p "$project" -f infra/docker-compose.yml)

log() { printf 'smoke-test: %s\n' "$*" >&2; }
fail() {
  log "FAILED: $*"
  "${compose[@]}" ps -a >&2 || true
  "${compose[@]}" logs --tail 50 >&2 || true
  exit 1
}
cleanup() {
  [[ ${KEEP_STACK:-0} == 1 ]] || "${compose[@]}" --profile load down --volumes --remove-orphans >/dev/null 2>&1 || true
}
trap cleanup EXIT

# poll SECONDS COMMAND...: retries every 2 s until COMMAND succeeds.
poll() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 2
  done
}

stored_events() {
  "${compose[@]}" exec -T postgres psql -U eventpulse -d eventpulse -tAc \
    "SELECT count(*) FROM events" 2>/dev/null | tr -d '[:space:]'
}
all_stored() { [[ $(stored_events) == "$events" ]]; }

prometheus_query() {
  "${compose[@]}" exec -T prometheus wget -q -O - \
    "http://127.0.0.1:9090/api/v1/query?query=$1" 2>/dev/null
}
both_consumers_scraped() { prometheus_query 'count(up%7Bjob%3D%22eventpulse-consumer%22%7D%3D%3D1)' | grep -q '"2"\]'; }
rules_loaded() {
  "${compose[@]}" exec -T prometheus wget -q -O - http://127.0.0.1:9090/api/v1/rules 2>/dev/null |
    grep -q EventpulseConsumerDown
}
# The provisioned dashboard exists and is the home dashboard.
grafana_has_dashboard() {
  local api="http://admin:${GRAFANA_ADMIN_PASSWORD:-admin}@127.0.0.1:3000/api/dashboards"
  "${compose[@]}" exec -T grafana wget -q -O - "$api/uid/eventpulse" 2>/dev/null | grep -q '"uid":"eventpulse"' &&
    "${compose[@]}" exec -T grafana wget -q -O - "$api/home" 2>/dev/null | grep -q '"uid":"eventpulse"'
}

# SMOKE_SKIP_BUILD=1: use images already built and tagged (CI builds them with
# docker/build-push-action first).
if [[ ${SMOKE_SKIP_BUILD:-0} != 1 ]]; then
  log "building the images"
  "${compose[@]}" --profile load build
fi
log "starting the stack with 2 consumers"
"${compose[@]}" up -d --scale consumer=2 --wait --wait-timeout 600 \
  kafka redis postgres consumer prometheus grafana || fail "the stack did not become healthy"

log "producing $events events"
"${compose[@]}" --profile load run --rm producer \
  --count "$events" --rate 0 --duplicate-ratio 0 --invalid-ratio 0 || fail "the producer failed"
poll 120 all_stored || fail "Postgres has $(stored_events) events, expected $events"
log "all $events events are in Postgres"

poll 90 both_consumers_scraped || fail "Prometheus does not scrape both consumers"
poll 30 rules_loaded || fail "Prometheus did not load the alert rules"
poll 60 grafana_has_dashboard || fail "Grafana does not serve the eventpulse dashboard as home"
log "PASS: events stored, 2 consumers scraped, rules loaded, dashboard provisioned"
