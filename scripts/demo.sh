#!/usr/bin/env bash
# The end-to-end demo (README, first command): brings the local stack up,
# builds, starts the consumer, runs the simulated users for a while with
# duplicates and invalid messages mixed in, waits until the consumer has
# caught up, and prints what happened.
#
# Settings: DEMO_RATE (events/s, default 5000), DEMO_DURATION (default 20s),
# DEMO_USERS (default 2000), EVENTPULSE_METRICS_ADDR (default 127.0.0.1:9464).
set -euo pipefail

EP_NAME=demo
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=scripts/lib/common.sh
source "$here/lib/common.sh"
cd "$EP_ROOT"

rate=${DEMO_RATE:-5000}
duration=${DEMO_DURATION:-20s}
users=${DEMO_USERS:-2000}
metrics_addr=${EVENTPULSE_METRICS_ADDR:-127.0.0.1:9464}
database_url=${EVENTPULSE_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/eventpulse}
summary="$EP_STATE/demo-summary.json"
consumer_log="$EP_LOGS/demo-consumer.log"

ensure_cargo_on_path

"$here/stack.sh" up
log "building the consumer and the producer (release)"
cargo build --release --quiet -p eventpulse-consumer -p eventpulse-producer
bin="${CARGO_TARGET_DIR:-$EP_ROOT/target}/release"

psql_count() { psql "$database_url" -Atc "$1"; }
# The schema may not exist yet on a first run; the consumer creates it.
"$bin/eventpulse-consumer" migrate --database-url "$database_url" 2>/dev/null
stored_before=$(psql_count "SELECT count(*) FROM events")
dead_before=$(psql_count "SELECT count(*) FROM dead_letters")
started_at=$(psql_count "SELECT now()")

log "starting the consumer (log: $consumer_log, metrics: http://$metrics_addr/metrics)"
EVENTPULSE_METRICS_ADDR=$metrics_addr EVENTPULSE_DATABASE_URL=$database_url \
  "$bin/eventpulse-consumer" >"$consumer_log" 2>&1 &
consumer=$!
trap 'kill "$consumer" 2>/dev/null || true' EXIT
ready() { curl -fsS "http://$metrics_addr/readyz" >/dev/null 2>&1; }
wait_until 60 ready || die "the consumer never became ready; see $consumer_log"

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
kill -TERM "$consumer"
wait "$consumer" || die "the consumer did not exit cleanly; see $consumer_log"
trap - EXIT
log "consumer stopped cleanly; the stack stays up (scripts/stack.sh down stops it)"
exit "$status"
