# shellcheck shell=bash
# Helpers shared by the scripts in scripts/: logging, bounded waits, pid files,
# probes of the local services, and package installs. Sourced, never run.
#
# Each script sets EP_NAME before sourcing, so every line says who printed it.

EP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
EP_STATE="$EP_ROOT/.state"
EP_PIDS="$EP_STATE/pids"
EP_LOGS="$EP_STATE/logs"
EP_NAME=${EP_NAME:-eventpulse}

# --- logging -----------------------------------------------------------------

log() { printf '%s: %s\n' "$EP_NAME" "$*" >&2; }

# One line, then exit: callers name the setting, address or log path to look at.
die() {
  printf '%s: error: %s\n' "$EP_NAME" "$*" >&2
  exit 1
}

# Hides the password of a URL (scheme://user:secret@host) so logs never show it.
redact_url() { sed -E 's#([^/@,:[:space:]]*):[^@/,[:space:]]*@#\1:***@#g' <<<"$1"; }

ensure_state_dirs() { mkdir -p "$EP_PIDS" "$EP_LOGS"; }

# One aligned line of `stack.sh status`: COMPONENT ADDRESS HEALTH DETAIL.
status_line() { printf '%-9s %-48s %-9s %s\n' "$1" "$2" "$3" "$4"; }

# rustup puts cargo in ~/.cargo/bin, which a non-login shell (CI) may lack.
ensure_cargo_on_path() {
  if ! command -v cargo >/dev/null && [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo ]]; then
    PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
  fi
  command -v cargo >/dev/null || die "cargo is not on PATH (PATH=$PATH); install Rust with rustup"
}

# --- bounded waits -----------------------------------------------------------

# wait_until SECONDS COMMAND [ARGS...]: polls every 0.2 s; non-zero on timeout.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# --- probes (pure bash, so they work before any client tool is installed) ----
# The single-quoted scripts below get host and port as $1 and $2 of the inner
# bash, which `timeout` bounds.

# True when something accepts a TCP connection on HOST PORT.
# shellcheck disable=SC2016
tcp_answers() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# True when HOST PORT answers a Kafka ApiVersions v0 request with our
# correlation id ("EPLS"). A plain TCP check cannot tell a broker from, say, an
# HTTP server that happens to hold the port.
# shellcheck disable=SC2016
kafka_answers() {
  local reply
  reply=$(timeout 3 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "\x00\x00\x00\x0c\x00\x12\x00\x00EPLS\x00\x02ep" >&3
    head -c 8 <&3 | od -An -tx1' _ "$1" "$2" 2>/dev/null) || return 1
  reply=${reply//[[:space:]]/}
  [[ ${reply:8} == 45504c53 ]]
}

# True when HOST PORT answers the Redis PING command.
# shellcheck disable=SC2016
redis_answers() {
  local reply
  reply=$(timeout 2 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "PING\r\n" >&3
    head -c 5 <&3' _ "$1" "$2" 2>/dev/null) || return 1
  [[ $reply == "+PONG" ]]
}

# "name (pid N)" of the process listening on local TCP PORT, or "an unknown process".
port_owner() {
  local line
  line=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(("[^"]*",pid=[0-9]*' | head -n1) || true
  if [[ $line =~ \"([^\"]*)\",pid=([0-9]+) ]]; then
    printf '%s (pid %s)' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
  else
    printf 'an unknown process'
  fi
}

# --- pid files: .state/pids/NAME.pid marks what `stack.sh up` started ---------

pid_file() { printf '%s/%s.pid' "$EP_PIDS" "$1"; }

# Prints the pid recorded for NAME if that process is alive and its command line
# contains PATTERN (a recycled pid belonging to something else does not count).
owned_pid() {
  local file pid
  file=$(pid_file "$1")
  [[ -s $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2" || return 1
  printf '%s' "$pid"
}

# Forgets NAME's pid file when it names no live process of ours.
clear_stale_pid() {
  owned_pid "$1" "$2" >/dev/null || rm -f "$(pid_file "$1")"
}

# True when PID has exited (a zombie waiting for its reaper counts as exited).
pid_gone() {
  local state
  kill -0 "$1" 2>/dev/null || return 0
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
  [[ $state == Z ]]
}

# stop_owned NAME PATTERN: SIGTERM, up to 20 s for a clean exit, then SIGKILL.
stop_owned() {
  local pid
  if ! pid=$(owned_pid "$1" "$2"); then
    rm -f "$(pid_file "$1")"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_until 20 pid_gone "$pid"; then
    log "$1 (pid $pid) ignored SIGTERM for 20 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$(pid_file "$1")"
  log "stopped $1 (pid $pid)"
}

# --- privileges and packages ---------------------------------------------------

# Runs a command as root: directly when we are root (CI here), else via sudo
# without a prompt (GitHub runners), since CI has no stdin to type a password.
as_root() {
  if ((EUID == 0)); then
    "$@"
  elif sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    die "'$1' needs root and sudo asks for a password; run it once by hand: sudo $*"
  fi
}

EP_APT_UPDATED=${EP_APT_UPDATED:-}

# apt_install PACKAGE...: Debian packages, with one `apt-get update` per run
# (a fresh machine's package lists are empty or stale). Scripts now install
# in the background while something compiles (see `in_background`), so two
# may want apt at once: they take turns on one lock instead of failing on
# dpkg's.
apt_install() {
  local apt_log="$EP_LOGS/apt.log"
  ensure_state_dirs
  command -v apt-get >/dev/null || die "need Debian packages $* but apt-get is missing; install them by hand"
  log "installing Debian packages: $* (log: $apt_log)"
  exec {apt_lock}>"$EP_STATE/apt.lock"
  flock -w 1800 "$apt_lock" || die "waited 30 min for another apt-get of this checkout"
  if [[ -z $EP_APT_UPDATED ]]; then
    as_root apt-get -o DPkg::Lock::Timeout=600 update >>"$apt_log" 2>&1 {apt_lock}>&- || die "apt-get update failed; log: $apt_log"
    EP_APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "$@" \
    >>"$apt_log" 2>&1 {apt_lock}>&- || die "apt-get install $* failed; log: $apt_log"
  exec {apt_lock}>&-
}

# in_background NAME COMMAND...: starts COMMAND now, its output in
# $EP_LOGS/NAME.log, so downloads and installs overlap a long compile (on 2
# cores, two compiles side by side gain nothing; a download beside one does).
# The step that needs the result runs its own command again later: that one
# is then quick, and it is the one that reports a failure.
EP_BACKGROUND=()
in_background() {
  local name=$1
  shift
  ensure_state_dirs
  "$@" >"$EP_LOGS/$name.log" 2>&1 </dev/null &
  EP_BACKGROUND+=("$!")
  log "meanwhile, in the background: $name (log: $EP_LOGS/$name.log)"
}

# Waits for every in_background job; their failures are reported by the steps
# that repeat their work.
wait_background() {
  local pid
  for pid in "${EP_BACKGROUND[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  EP_BACKGROUND=()
}
