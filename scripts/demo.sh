#!/usr/bin/env bash
# The end-to-end demo (README, first command): brings the local stack up,
# builds, starts the consumer and the API with its live dashboard (the URL is
# printed), runs the simulated users for a while with duplicates and invalid
# messages mixed in, waits until the consumer has caught up, and prints what
# happened.
#
# Usage: scripts/demo.sh [--watch]
#   --watch  after the figures, keep producing at a gentle rate (DEMO_WATCH_RATE
#            events/s, default 50) with the dashboard up, until Ctrl-C.
# Settings: DEMO_RATE (events/s, default 5000), DEMO_DURATION (default 20s),
# DEMO_USERS (default 2000), EVENTPULSE_METRICS_ADDR (default 127.0.0.1:9464),
# EVENTPULSE_API_ADDR (the dashboard and API, default 127.0.0.1:8080).
set -euo pipefail

EP_NAME=demo
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=scripts/lib/common.sh
source "$here/lib/common.sh"
cd "$EP_ROOT"

watch=false
case "${1:-}" in
--watch) watch=true ;;
"") ;;
*) die "usage: scripts/demo.sh [--watch]" ;;
esac
rate=${DEMO_RATE:-5000}
watch_rate=${DEMO_WATCH_RATE:-50}
api_addr=${EVENTPULSE_API_ADDR:-127.0.0.1:8080}
duration=${DEMO_DURATION:-20s}
users=${DEMO_USERS:-2000}
metrics_addr=${EVENTPULSE_METRICS_ADDR:-127.0.0.1:9464}
database_url=${EVENTPULSE_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/eventpulse}
summary="$EP_STATE/demo-summary.json"
consumer_log="$EP_LOGS/demo-consumer.log"
api_log="$EP_LOGS/demo-api.log"

ensure_cargo_on_path

# Downloads and installs overlap the broker's build (stack.sh up): the
# project's crates, and the dashboard's npm packages and page.
in_background cargo-fetch cargo fetch --locked
in_background dashboard "$here/dashboard.sh" build
"$here/stack.sh" up
wait_background
"$here/dashboard.sh" build
log "building the consumer, the producer and the API (profile demo: release at opt-level 1; about 5 min on 2 cores the first time, seconds after)"
cargo build --profile demo --quiet -p eventpulse-consumer -p eventpulse-producer -p eventpulse-api
bin="${CARGO_TARGET_DIR:-$EP_ROOT/target}/demo"

psql_count() { psql "$database_url" -Atc "$1"; }
# The schema may not exist yet on a first run; the consumer creates it.
"$bin/eventpulse-consumer" migrate --database-url "$database_url" 2>/dev/null

log "starting the consumer (log: $consumer_log, metrics: http://$metrics_addr/metrics)"
# setsid: Ctrl-C (with --watch) reaches the producer only; the consumer then
# stores its last events before this script stops it.
EVENTPULSE_METRICS_ADDR=$metrics_addr EVENTPULSE_DATABASE_URL=$database_url \
  setsid "$bin/eventpulse-consumer" >"$consumer_log" 2>&1 &
consumer=$!
# The demo's own API key: ingestion over HTTP works too (docs/api.md).
EVENTPULSE_API_ADDR=$api_addr EVENTPULSE_DATABASE_URL=$database_url \
  EVENTPULSE_API_KEYS=${EVENTPULSE_API_KEYS:-demo-key-change-me-0123} \
  EVENTPULSE_DASHBOARD_DIR="$EP_ROOT/dashboard/dist" \
  setsid "$bin/eventpulse-api" >"$api_log" 2>&1 &
api=$!
producer=""
stop_all() {
  [[ -n $producer ]] && kill "$producer" 2>/dev/null
  kill "$api" "$consumer" 2>/dev/null || true
}
trap stop_all EXIT
api_up() { curl -fsS "http://$api_addr/healthz" >/dev/null 2>&1; }
wait_until 60 api_up || die "the API never answered on $api_addr; see $api_log"
log "dashboard: http://$api_addr/  (open it now to watch the run)"
# Producing before the consumer owns its partitions only adds the group's
# join time to the first events' latency.
owns_partitions() {
  curl -fsS "http://$metrics_addr/metrics" 2>/dev/null |
    awk '$1 == "eventpulse_assigned_partitions" && $2 > 0 { found = 1 } END { exit !found }'
}
wait_until 60 owns_partitions || die "the consumer owned no partition after 60 s; see $consumer_log"
# Whatever an earlier run left in the topic is stored before the counts
# below are taken, so it is not counted as this run's.
caught_up_with_topic() {
  curl -fsS "http://$api_addr/pipeline/status" 2>/dev/null |
    python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(any(p["lag"] != 0 for p in s["partitions"]))'
}
wait_until 120 caught_up_with_topic || log "the consumer is still behind the topic after 120 s; the figures may include older events"
stored_before=$(psql_count "SELECT count(*) FROM events")
dead_before=$(psql_count "SELECT count(*) FROM dead_letters")
started_at=$(psql_count "SELECT now()")

log "producing at $rate events/s for $duration from $users simulated users (5% duplicates, 1% invalid)"
"$bin/eventpulse-producer" --rate "$rate" --duration "$duration" --users "$users" \
  --duplicate-ratio 0.05 --invalid-ratio 0.01 --summary-json "$summary"

expected=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["valid_unique"], s["invalid_total"])' "$summary")
read -r want_stored want_dead <<<"$expected"
caught_up() {
  (($(psql_count "SELECT count(*) FROM events") - stored_before >= want_stored)) &&
    (($(psql_count "SELECT count(*) FROM dead_letters") - dead_before >= want_dead))
}
log "waiting for the consumer to store $want_stored events and dead-letter $want_dead messages"
wait_until 120 caught_up || log "the consumer did not catch up within 120 s; figures below show how far it got"

stored=$(($(psql_count "SELECT count(*) FROM events") - stored_before))
dead=$(($(psql_count "SELECT count(*) FROM dead_letters") - dead_before))
read -r seconds p50 p99 <<<"$(psql_count "
  SELECT round(extract(epoch FROM max(ingested_at) - min(ingested_at))::numeric, 3),
         round(1000 * extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY ingested_at - occurred_at))::numeric),
         round(1000 * extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY ingested_at - occurred_at))::numeric)
  FROM events WHERE ingested_at >= '$started_at'" | tr '|' ' ')"

echo
echo "eventpulse demo: $rate events/s for $duration"
status=0
python3 "$here/lib/demo_report.py" "$summary" "http://$metrics_addr/metrics" "$stored" "$dead" "${seconds:-0}" "${p50:-?}" "${p99:-?}" || status=$?
echo "dashboard: http://$api_addr/"
if $watch; then
  echo
  echo "Watching: producing $watch_rate events/s until Ctrl-C. Dashboard: http://$api_addr/"
  "$bin/eventpulse-producer" --rate "$watch_rate" --users 200 --duplicate-ratio 0.05 --invalid-ratio 0.01 \
    --summary-json "$EP_STATE/demo-watch-summary.json" >/dev/null 2>&1 &
  producer=$!
  trap 'echo; log "stopping"' INT
  # Ctrl-C ends this wait at once; the producer, told too, may still be
  # flushing: stop it and wait for it before stopping what it feeds.
  wait "$producer" || true
  kill "$producer" 2>/dev/null || true
  wait "$producer" 2>/dev/null || true
  producer=""
  trap - INT
  wait_until 60 caught_up_with_topic || log "the consumer had not stored every event after 60 s"
fi
kill -TERM "$api" 2>/dev/null || true
kill -TERM "$consumer"
wait "$api" || log "the API did not exit cleanly; see $api_log"
wait "$consumer" || die "the consumer did not exit cleanly; see $consumer_log"
trap - EXIT
log "consumer and API stopped cleanly; the stack stays up (scripts/stack.sh down stops it)"
$watch || log "to keep the dashboard live with a gentle stream of events: scripts/demo.sh --watch"
exit "$status"
