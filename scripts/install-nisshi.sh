#!/usr/bin/env bash
# Makes sure the nisshi broker binary (Kafka-API-compatible, from crates.io) is
# installed, and prints its path on stdout; everything else goes to stderr.
#
# EVENTPULSE_NISSHI_BIN, when set, names a binary to use instead. Otherwise the
# binary lives in the user's cache, shared by every checkout, because building
# it is the longest step of a first run.
#
# What is built, chosen by measurement (docs/broker-build.md): only the
# storage engines the project uses (`libsql` for sqlite://, which survives a
# restart, for the stack and the fault suite; `dynostore` for memory://, the
# bench's), not the default postgres engine; no optimisation except for the
# crates on the broker's produce and fetch path, set for this one build
# through CARGO_PROFILE_RELEASE_* and --config (the project's own builds keep
# their settings).
set -euo pipefail

EP_NAME=install-nisshi
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

NISSHI_VERSION=0.8.1
# Names the build recipe below; a new recipe gets a new folder, so a machine
# never keeps a broker built some other way.
NISSHI_RECIPE=hot-opt1
# Shared by every checkout on the machine, so it lives in the user's cache,
# not in .state/.
NISSHI_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/eventpulse/nisshi-$NISSHI_VERSION-$NISSHI_RECIPE"
NISSHI_BIN="$NISSHI_ROOT/bin/nisshi"
BUILD_LOG="$EP_LOGS/nisshi-build.log"
BUILD_WAIT_SECS=3000 # a build already running may have just started
NISSHI_FEATURES=libsql,dynostore
# Most of the 465 crates are never run by the stack (TLS, the scripting
# engine, JSON Schema, object stores, the proxy's HTTP stack): they build at
# opt-level 0. The crates every produced and fetched record goes through build
# at opt-level 1. Measured on 2 cores in a cold demo.sh (docs/broker-build.md):
# 6 min 31 s instead of 11 min 24 s for opt-level 1 everywhere, and a produce
# rate into sqlite storage within 3% of the fully optimised broker's.
HOT_CRATES=(nisshi-sans-io nisshi-broker nisshi-service nisshi-storage nisshi-storage-sql
  nisshi-storage-dynostore libsql libsql-sys libsql-ffi tokio bytes lz4 lz4-sys crc-fast
  crc32fast hashbrown serde serde_json)
# How far a build of this recipe is (share of its wall time gone) once 0%,
# 10%, ... 100% of its crates have started, from the measured build on 2
# cores (--timings, docs/broker-build.md): the first crates are small and
# the last large, so a count of crates alone would promise far too little
# time left.
PROGRESS_CURVE=(0 9 12 15 21 30 37 43 52 62 100)
PROGRESS_CRATES=465

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

# Prints, every 30 s, how many crates have started and, from the measured
# curve, about how long is left at this machine's pace so far.
report_progress() {
  local started_at=$1 started elapsed permille tenth at left
  started=$(grep -c '^ *Compiling ' "$BUILD_LOG" || true)
  elapsed=$((SECONDS - started_at))
  permille=$((started * 1000 / PROGRESS_CRATES))
  ((permille > 999)) && permille=999
  # Too early to say: the first crates' pace says little about the last's.
  if ((permille < 200)); then
    log "building nisshi: $started of ~$PROGRESS_CRATES crates started, $((elapsed / 60)) min $((elapsed % 60)) s so far"
    return
  fi
  tenth=$((permille / 100))
  # Share of the build's time gone, interpolated on the curve, in per mille.
  at=$((PROGRESS_CURVE[tenth] * 10 + (PROGRESS_CURVE[tenth + 1] - PROGRESS_CURVE[tenth]) * (permille % 100) / 10))
  left=$((elapsed * (1000 - at) / at))
  log "building nisshi: $started of ~$PROGRESS_CRATES crates started, $((elapsed / 60)) min $((elapsed % 60)) s so far, about $(((left + 59) / 60)) min left"
}

build() {
  log "building nisshi $NISSHI_VERSION (features: $NISSHI_FEATURES; opt-level 1 for ${#HOT_CRATES[@]} crates on its hot path, 0 for the rest) with cargo install; log: $BUILD_LOG"
  local started=$SECONDS pid status=0
  # --ignore-rust-version: the locked dependencies declare Rust 1.96 but build
  # fine on the machine's 1.95. No link-time optimisation and no debug info:
  # both cost build time and the broker does not need them.
  # EVENTPULSE_NISSHI_TIMINGS=DIR keeps the build folder there with cargo's
  # --timings report (how docs/broker-build.md was measured).
  local -a timings=() hot=()
  local crate
  [[ -n ${EVENTPULSE_NISSHI_TIMINGS:-} ]] && timings=(--timings --target-dir "$EVENTPULSE_NISSHI_TIMINGS")
  for crate in "${HOT_CRATES[@]}"; do
    hot+=(--config "profile.release.package.\"$crate\".opt-level=1")
  done
  CARGO_PROFILE_RELEASE_OPT_LEVEL=0 \
    CARGO_PROFILE_RELEASE_LTO=off \
    CARGO_PROFILE_RELEASE_DEBUG=0 \
    cargo install "nisshi@$NISSHI_VERSION" --locked --ignore-rust-version \
    --no-default-features --features "$NISSHI_FEATURES" --root "$NISSHI_ROOT" "${hot[@]}" "${timings[@]}" \
    >"$BUILD_LOG" 2>&1 &
  pid=$!
  while ! wait_until 30 pid_gone "$pid"; do
    report_progress "$started"
  done
  wait "$pid" || status=$?
  if ((status != 0)) || ! installed; then
    die "cargo install nisshi@$NISSHI_VERSION failed (exit $status); log: $BUILD_LOG"
  fi
  log "built nisshi in $(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s: $NISSHI_BIN"
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
