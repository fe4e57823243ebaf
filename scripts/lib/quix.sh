# shellcheck shell=bash
# Quix Streams in a venv of its own, for the peer stage of `bench.sh --peer`:
# only that stage needs it, so CI's `bench.sh --quick` never installs it.
# Sourced by bench.sh after common.sh.

QUIX_REQUIREMENTS="$EP_ROOT/scripts/peer/requirements.txt"
QUIX_VENV=${XDG_CACHE_HOME:-$HOME/.cache}/eventpulse/venv-quix

# Prints the venv's python, installing the pinned requirements first unless
# the venv already holds exactly them. The stamp is written last, so an
# install cut short is redone rather than trusted.
quix_python() {
  local stamp="$QUIX_VENV/requirements.sha256" want quix_log="$EP_LOGS/quix-venv.log"
  want=$(sha256sum "$QUIX_REQUIREMENTS" | cut -d' ' -f1)
  if [[ -x $QUIX_VENV/bin/python && -f $stamp && $(<"$stamp") == "$want" ]]; then
    printf '%s\n' "$QUIX_VENV/bin/python"
    return
  fi
  ensure_state_dirs
  log "installing Quix Streams ($QUIX_REQUIREMENTS) into $QUIX_VENV (log: $quix_log)"
  rm -rf "$QUIX_VENV"
  python3 -m venv "$QUIX_VENV" >>"$quix_log" 2>&1 || die "python3 -m venv $QUIX_VENV failed; log: $quix_log"
  "$QUIX_VENV/bin/python" -m pip install --disable-pip-version-check --no-input \
    -r "$QUIX_REQUIREMENTS" >>"$quix_log" 2>&1 || die "pip install of Quix Streams failed; log: $quix_log"
  printf '%s\n' "$want" >"$stamp"
  printf '%s\n' "$QUIX_VENV/bin/python"
}

# True when bench.sh's arguments ask for the peer stage (--peer, or peer in --only).
wants_peer() {
  local arg only=""
  while (($#)); do
    arg=$1
    shift
    case $arg in
      --peer) return 0 ;;
      --only=*) only=${arg#--only=} ;;
      --only) only=${1:-} ;;
      *) continue ;;
    esac
    [[ ,$only, == *,peer,* ]] && return 0
  done
  return 1
}
