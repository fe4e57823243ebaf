#!/usr/bin/env bash
# THE test command (README, .ci/run, GitHub Actions): brings the local stack up
# (scripts/stack.sh up), then checks formatting, lints, and runs every test
# against the stack. The last line is one PASS/FAIL summary.
#
# Usage: scripts/test.sh [ARGS...]   (ARGS go to the test runner, e.g. a
# nextest filter: scripts/test.sh -E 'test(dedup)')
#
# Tests read the stack's addresses from the environment; values already set
# are kept, so the same command runs against other services (CI's containers).
set -euo pipefail

EP_NAME="test"
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=scripts/lib/common.sh
source "$here/lib/common.sh"

started=$SECONDS
passed=()
failed=()

# Prints the summary line and exits 0 only when every step passed.
finish() {
  # Installs still running in the background end with the run.
  ((${#EP_BACKGROUND[@]})) && kill "${EP_BACKGROUND[@]}" 2>/dev/null || true
  local took="$(((SECONDS - started) / 60))m$(((SECONDS - started) % 60))s"
  if ((${#failed[@]} == 0)); then
    echo "PASS: scripts/test.sh (${passed[*]}) in $took"
    exit 0
  fi
  echo "FAIL: scripts/test.sh failed at: ${failed[*]}${passed[*]:+ (passed: ${passed[*]})} in $took"
  exit 1
}

# step NAME COMMAND...: runs every step even after a failure, so one run
# reports formatting, lint and test problems together.
step() {
  local name=$1
  shift
  log "== $name: $*"
  if "$@"; then
    passed+=("$name")
  else
    failed+=("$name")
    log "$name FAILED"
  fi
}

in_ci() { [[ -n ${CI:-} && ${CI} != false && ${CI} != 0 ]]; }

ensure_cargo_on_path

# Downloads and installs overlap the broker's build on a fresh machine: the
# crates, the dashboard's packages and the browser, the monitoring checkers.
# Their steps below run the same commands again (quick by then) and report.
in_background cargo-fetch cargo fetch --locked
in_background dashboard "$here/dashboard.sh" browser
in_background monitoring-tools "$here/check-monitoring.sh" --install-only
in_background grpcurl "$here/install-grpcurl.sh"

if ! "$here/stack.sh" up; then
  failed+=("stack-up")
  finish
fi

export EVENTPULSE_BROKERS="${EVENTPULSE_BROKERS:-127.0.0.1:9092}"
export EVENTPULSE_REDIS_URL="${EVENTPULSE_REDIS_URL:-redis://127.0.0.1:6379}"
export EVENTPULSE_TEST_ADMIN_DATABASE_URL="${EVENTPULSE_TEST_ADMIN_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
# Fault tests start their own broker on a spare port from this binary, so the
# shared one stays up for the other tests.
if ! EVENTPULSE_NISSHI_BIN=$("$here/install-nisshi.sh"); then
  failed+=("install-nisshi")
  finish
fi
export EVENTPULSE_NISSHI_BIN
wait_background
# grpcurl for api/tests/it/grpcurl.rs (docs/api.md's commands); a failed
# install is reported here and that test then says what is missing.
if ! EVENTPULSE_GRPCURL_BIN=$("$here/install-grpcurl.sh"); then
  failed+=("install-grpcurl")
fi
export EVENTPULSE_GRPCURL_BIN
log "tests use brokers $(redact_url "$EVENTPULSE_BROKERS"), redis $(redact_url "$EVENTPULSE_REDIS_URL"), admin database $(redact_url "$EVENTPULSE_TEST_ADMIN_DATABASE_URL"), nisshi $EVENTPULSE_NISSHI_BIN, grpcurl ${EVENTPULSE_GRPCURL_BIN:-missing}"

step fmt cargo fmt --all -- --check
step clippy cargo clippy --workspace --all-targets -- -D warnings
step monitoring "$here/check-monitoring.sh"
step workflows "$here/check-workflows.sh"
# The page and the browser for api/tests/it/browser.rs.
step dashboard "$here/dashboard.sh" browser
if cargo nextest --version >/dev/null 2>&1; then
  profile=default
  in_ci && profile=ci
  step tests cargo nextest run --workspace --profile "$profile" "$@"
else
  log "cargo-nextest is not installed; falling back to cargo test"
  step tests cargo test --workspace "$@"
fi
# The short fault suite: every scenario of docs/reliability.md, fewer events.
step faults "$here/faults.sh" --short
finish
