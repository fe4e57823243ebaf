#!/usr/bin/env bash
# The benchmark (docs/benchmarks.md): component ceilings, end-to-end drain,
# events/s through the API's gRPC ingestion into Kafka (beside the producer
# straight to Kafka), produce-to-row latency and consumer scaling, printed as
# one table with ratios to the slowest ceiling. Redis and Postgres come from
# the local stack; the broker is a private in-memory nisshi on a spare port
# (with sqlite storage the broker, not eventpulse, would be the bottleneck),
# stopped on exit. Set EVENTPULSE_BROKERS to benchmark against an existing
# Kafka instead.
#
# --peer adds the peer comparison: Quix Streams' PostgreSQLSink drains the same
# pre-filled topic as our consumer (into a database of its own) and the table
# gets our rows/s over theirs. Only then is Quix Streams installed, into a venv
# under ~/.cache/eventpulse (scripts/lib/quix.sh); `--only peer` runs it alone.
#
# Usage: scripts/bench.sh [--quick] [--sweep] [--peer] [--json FILE] [--events N] ...
#        (every flag: target/release/eventpulse-bench --help)
set -euo pipefail

EP_NAME=bench
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=scripts/lib/common.sh
source "$here/lib/common.sh"
# shellcheck source=scripts/lib/quix.sh
source "$here/lib/quix.sh"
cd "$EP_ROOT"

ensure_cargo_on_path

# The peer stage's venv first: a failed install should not wait for the build.
peer=()
if wants_peer "$@"; then
  peer=(--peer-python "$(quix_python)")
fi

# Only Redis and Postgres are needed from the stack; its broker stays as it is.
EVENTPULSE_BROKERS=${EVENTPULSE_BROKERS:-} "$here/stack.sh" up >/dev/null
log "building release binaries"
cargo build --release --quiet -p eventpulse-consumer -p eventpulse-producer -p eventpulse-api -p eventpulse-harness

if [[ -z ${EVENTPULSE_BROKERS:-} ]]; then
  nisshi=$("$here/install-nisshi.sh")
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  ensure_state_dirs
  broker_log="$EP_LOGS/bench-broker.log"
  "$nisshi" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://nisshi/ --group-initial-rebalance-delay 200ms >"$broker_log" 2>&1 &
  broker=$!
  trap 'kill "$broker" 2>/dev/null || true; wait "$broker" 2>/dev/null || true' EXIT
  wait_until 30 kafka_answers 127.0.0.1 "$port" || die "the benchmark broker never answered on 127.0.0.1:$port; see $broker_log"
  export EVENTPULSE_BROKERS="127.0.0.1:$port"
  log "private in-memory broker on $EVENTPULSE_BROKERS (log: $broker_log)"
fi
export EVENTPULSE_REDIS_URL="${EVENTPULSE_REDIS_URL:-redis://127.0.0.1:6379}"
export EVENTPULSE_TEST_ADMIN_DATABASE_URL="${EVENTPULSE_TEST_ADMIN_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

# Cargo builds into CARGO_TARGET_DIR when it is set (a shared target folder).
bin="${CARGO_TARGET_DIR:-target}/release"
"$bin/eventpulse-bench" --bin-dir "$bin" "${peer[@]}" "$@"
