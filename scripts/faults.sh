#!/usr/bin/env bash
# The fault suite (docs/reliability.md): breaks one thing at a time while
# seeded traffic flows (consumer SIGKILLed, rebalance storm, a zombie frozen
# past its session timeout, Redis down then flushed, Postgres restarted /
# connections killed / locked while large records arrive / restored from an
# earlier dump / down at SIGTERM, broker restarted, adversarial input) and checks each run exactly: every distinct valid event
# stored once, every invalid message dead-lettered once, offsets consistent.
# Prints a table: scenario, messages, stored, lost, duplicated, DLQ'd, time to
# recover. Private Redis, Postgres and broker instances on spare ports take
# the faults, so the shared stack is never stopped.
#
# Usage: scripts/faults.sh [--short] [--only NAME] [--events N] [--kills N] [--json FILE]
#   --short uses the debug binaries (the build scripts/test.sh already made)
#   and runs in about two minutes; it is part of scripts/test.sh.
set -euo pipefail

EP_NAME=faults
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=scripts/lib/common.sh
source "$here/lib/common.sh"
cd "$EP_ROOT"

ensure_cargo_on_path

profile=release
for arg in "$@"; do
  [[ $arg == --short ]] && profile=debug
done

"$here/stack.sh" up >/dev/null
EVENTPULSE_NISSHI_BIN=$("$here/install-nisshi.sh")
export EVENTPULSE_NISSHI_BIN
export EVENTPULSE_BROKERS="${EVENTPULSE_BROKERS:-127.0.0.1:9092}"
export EVENTPULSE_REDIS_URL="${EVENTPULSE_REDIS_URL:-redis://127.0.0.1:6379}"
export EVENTPULSE_TEST_ADMIN_DATABASE_URL="${EVENTPULSE_TEST_ADMIN_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

log "building the consumer, the producer and the harness ($profile)"
build=(cargo build --quiet -p eventpulse-consumer -p eventpulse-producer -p eventpulse-harness)
[[ $profile == release ]] && build+=(--release)
"${build[@]}"

# Cargo builds into CARGO_TARGET_DIR when it is set (a shared target folder).
bin="${CARGO_TARGET_DIR:-target}/$profile"
"$bin/eventpulse-faults" --bin-dir "$bin" "$@"
