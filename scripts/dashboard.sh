#!/usr/bin/env bash
# Builds the dashboard page (dashboard/, Vite + Chart.js from the npm
# registry) that eventpulse-api serves at /, and its Swagger UI page at
# /docs (swagger-ui-dist from npm), installing what it needs:
#   scripts/dashboard.sh build     npm ci (when the lock file changed), then
#                                  vite build into dashboard/dist/ (when a
#                                  source changed)
#   scripts/dashboard.sh browser   build, and install Debian's chromium for the
#                                  browser test (api/tests/it/browser.rs)
# Needs Node.js >= 20 with npm; installs Debian's nodejs and npm when node is
# missing. Works offline once node_modules/ is there (no CDN at run time).
set -euo pipefail

EP_NAME=dashboard
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=scripts/lib/common.sh
source "$here/lib/common.sh"
DIR="$EP_ROOT/dashboard"
CHROMIUM=${EVENTPULSE_CHROMIUM:-/usr/bin/chromium}

ensure_node() {
  command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  ((major >= 20)) || die "Node.js $(node --version) is too old for Vite: install Node.js 20 or newer (node --version)"
}

# npm ci only when package-lock.json is newer than the last install.
install_packages() {
  local stamp="$DIR/node_modules/.package-lock.json"
  if [[ -f $stamp && $stamp -nt $DIR/package-lock.json ]]; then
    return
  fi
  log "npm ci (dashboard/package-lock.json)"
  (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error) >&2 || die "npm ci failed in dashboard/"
}

# vite build only when a source is newer than the built page.
build_page() {
  local built="$DIR/dist/index.html"
  if [[ -f $built && -f $DIR/dist/docs.html ]] && [[ -z $(find "$DIR/index.html" "$DIR/docs.html" "$DIR/src" "$DIR/public" \
    "$DIR/vite.config.js" "$DIR/package-lock.json" -newer "$built" -print -quit 2>/dev/null) ]]; then
    return
  fi
  log "building the dashboard into dashboard/dist"
  (cd "$DIR" && npm run --silent build) >&2 || die "vite build failed in dashboard/"
}

ensure_browser() {
  [[ -x $CHROMIUM ]] || apt_install chromium
  [[ -x $CHROMIUM ]] || die "no browser at $CHROMIUM after installing Debian's chromium (EVENTPULSE_CHROMIUM names another)"
}

main() {
  case "${1:-build}" in
  build) ensure_node; install_packages; build_page ;;
  browser) ensure_node; install_packages; build_page; ensure_browser ;;
  *) die "usage: scripts/dashboard.sh [build|browser]" ;;
  esac
}

main "$@"
