#!/usr/bin/env bash
# Makes sure the nisshi broker binary (Kafka-API-compatible, from crates.io) is
# installed, and prints its path on stdout; everything else goes to stderr.
#
# EVENTPULSE_NISSHI_BIN, when set, names a binary to use instead. Otherwise the
# binary lives in the user's cache, shared by every checkout, because building
# it takes ~17 minutes on 2 cores.
set -euo pipefail

EP_NAME=install-nisshi
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

NISSHI_VERSION=0.8.1
# Shared by every checkout on the machine, so it lives in the user's cache,
# not in .state/.
NISSHI_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/eventpulse/nisshi-$NISSHI_VERSION"
NISSHI_BIN="$NISSHI_ROOT/bin/nisshi"
BUILD_LOG="$EP_LOGS/nisshi-build.log"
BUILD_WAIT_SECS=3000 # a build already running may have just started

installed() { [[ -x $NISSHI_BIN ]]; }

other_build_running() { pgrep -f "cargo install nisshi" >/dev/null 2>&1; }

# A build started by hand or by another checkout installs into the same root:
# wait for it rather than compete with it for the two cores.
wait_for_other_build() {
  other_build_running || return 0
  log "another 'cargo install nisshi' is running; waiting for it (up to $((BUILD_WAIT_SECS / 60)) min)"
  local deadline=$((SECONDS + BUILD_WAIT_SECS))
  while other_build_running; do
    ((SECONDS < deadline)) || die "the other 'cargo install nisshi' still runs after $((BUILD_WAIT_SECS / 60)) min; stop it or wait, then retry"
    sleep 10
  done
}

ensure_build_tools() {
  command -v cargo >/dev/null || die "cargo is not on PATH (PATH=$PATH); install Rust with rustup first"
  # nisshi's BoringSSL/aws-lc dependencies build with cmake, which a fresh
  # machine lacks.
  command -v cmake >/dev/null || apt_install cmake
  # The BoringSSL/aws-lc builds also need a C/C++ compiler.
  command -v c++ >/dev/null || apt_install build-essential
}

# Prints a line every 5 minutes so a person (or CI log) sees the build is alive.
build() {
  log "building nisshi $NISSHI_VERSION with cargo install (takes ~17 min on 2 cores); log: $BUILD_LOG"
  local started=$SECONDS pid status=0
  # --ignore-rust-version: the locked dependencies declare Rust 1.96 but build
  # fine on the machine's 1.95.
  cargo install "nisshi@$NISSHI_VERSION" --locked --ignore-rust-version --root "$NISSHI_ROOT" \
    >"$BUILD_LOG" 2>&1 &
  pid=$!
  while ! wait_until 300 pid_gone "$pid"; do
    log "still building nisshi ($(((SECONDS - started) / 60)) min so far)"
  done
  wait "$pid" || status=$?
  if ((status != 0)) || ! installed; then
    die "cargo install nisshi@$NISSHI_VERSION failed (exit $status); log: $BUILD_LOG"
  fi
  log "built nisshi in $(((SECONDS - started) / 60)) min: $NISSHI_BIN"
}

main() {
  if [[ -n ${EVENTPULSE_NISSHI_BIN:-} ]]; then
    [[ -x $EVENTPULSE_NISSHI_BIN ]] || die "EVENTPULSE_NISSHI_BIN=$EVENTPULSE_NISSHI_BIN is not an executable file"
    printf '%s\n' "$EVENTPULSE_NISSHI_BIN"
    return
  fi
  if ! installed; then
    ensure_state_dirs
    mkdir -p "$NISSHI_ROOT"
    # One build per machine: a second checkout running this script at the same
    # time waits on the lock, then finds the binary installed.
    exec 9>"$NISSHI_ROOT.lock"
    flock -n 9 || {
      log "another install-nisshi holds $NISSHI_ROOT.lock; waiting for it"
      flock -w "$BUILD_WAIT_SECS" 9 || die "timed out waiting for $NISSHI_ROOT.lock"
    }
    wait_for_other_build
    installed || {
      ensure_build_tools
      build
    }
  fi
  printf '%s\n' "$NISSHI_BIN"
}

main "$@"
