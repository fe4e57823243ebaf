# shellcheck shell=bash
# The Kafka broker of the local stack: nisshi on 127.0.0.1:9092, or the
# brokers named by EVENTPULSE_BROKERS (then we start none). Sourced by
# stack.sh after common.sh.

BROKER_HOST=127.0.0.1
BROKER_PORT=9092
BROKER_ADDR="$BROKER_HOST:$BROKER_PORT"
BROKER_URL="tcp://$BROKER_ADDR"
BROKER_DIR="$EP_STATE/broker"
BROKER_LOG="$EP_LOGS/nisshi.log"
BROKER_START_SECS=30
# Kafka's default (3 s) delays every new consumer group's first assignment,
# and the tests create many groups. 200 ms still lets consumers started
# together join one generation instead of rebalancing once per member.
BROKER_REBALANCE_DELAY=200ms
# name:partitions of the topics the pipeline uses (the broker does not
# auto-create topics).
BROKER_TOPICS=(events:12 events.dlq:3)

# Prints the nisshi --storage-engine URL for EVENTPULSE_BROKER_STORAGE.
# sqlite (default) keeps data across restarts, like real Kafka; memory is
# faster (use it for benchmarks) and forgets everything on stop.
broker_storage_url() {
  case "${EVENTPULSE_BROKER_STORAGE:-sqlite}" in
    sqlite) printf 'sqlite://broker.db' ;; # relative to BROKER_DIR, the broker's cwd
    memory) printf 'memory://nisshi/' ;;
    *) die "EVENTPULSE_BROKER_STORAGE=${EVENTPULSE_BROKER_STORAGE} is not one of: sqlite, memory" ;;
  esac
}

broker_external() { [[ -n ${EVENTPULSE_BROKERS:-} ]]; }

# Prints one host:port per line from EVENTPULSE_BROKERS (comma-separated,
# optionally with a scheme such as PLAINTEXT://, IPv6 hosts in brackets).
broker_external_addrs() {
  local entry
  local -a entries
  IFS=',' read -r -a entries <<<"$EVENTPULSE_BROKERS"
  for entry in "${entries[@]}"; do
    entry=${entry//[[:space:]]/}
    entry=${entry#*://}
    [[ -n $entry ]] && printf '%s\n' "$entry"
  done
}

# Checks that every external broker accepts TCP connections; prints the first
# that does not and returns non-zero.
broker_external_check() {
  local addr host port
  while read -r addr; do
    host=${addr%:*} port=${addr##*:}
    host=${host#[} host=${host%]}
    [[ $port =~ ^[0-9]+$ && -n $host ]] || {
      printf '%s (not host:port)' "$addr"
      return 1
    }
    tcp_answers "$host" "$port" || {
      printf '%s' "$addr"
      return 1
    }
  done < <(broker_external_addrs)
}

broker_create_topics() {
  local nisshi entry name partitions out existing
  nisshi=$("$EP_ROOT/scripts/install-nisshi.sh")
  mkdir -p "$BROKER_DIR" # a reused broker may be another checkout's
  # Asking first keeps the broker log free of TopicAlreadyExists errors on
  # every `up`. The list is JSON: one {"name":"...",...} object per topic.
  existing=$(cd "$BROKER_DIR" && NO_COLOR=1 "$nisshi" topic list --broker "$BROKER_URL" 2>/dev/null) || existing=""
  for entry in "${BROKER_TOPICS[@]}"; do
    name=${entry%%:*} partitions=${entry##*:}
    grep -qF "\"name\":\"$name\"" <<<"$existing" && continue
    # Run from BROKER_DIR: nisshi reads a .env file from its working directory.
    if out=$(cd "$BROKER_DIR" && NO_COLOR=1 "$nisshi" topic create "$name" \
      --partitions "$partitions" --broker "$BROKER_URL" 2>&1); then
      log "created topic $name ($partitions partitions)"
    elif grep -qi 'already exists' <<<"$out"; then
      : # a concurrent `up` made it meanwhile
    else
      die "creating topic $name on $BROKER_ADDR failed: $(tail -n1 <<<"$out")"
    fi
  done
}

broker_start() {
  local nisshi storage pid
  nisshi=$("$EP_ROOT/scripts/install-nisshi.sh")
  storage=$(broker_storage_url)
  mkdir -p "$BROKER_DIR"
  log "starting nisshi on $BROKER_ADDR (storage: $storage); log: $BROKER_LOG"
  # The log keeps earlier runs; a dated header marks where this one begins.
  printf '=== %s stack.sh up: starting nisshi\n' "$(date -u +%FT%TZ)" >>"$BROKER_LOG"
  # setsid: the broker outlives this script and the terminal it ran in. The
  # inner shell records its own pid, then execs nisshi, so the pid file names
  # the broker itself.
  (
    cd "$BROKER_DIR" || exit 1
    # shellcheck disable=SC2016 # $$ and $1 belong to the inner shell
    NO_COLOR=1 setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$(pid_file nisshi)" \
      "$nisshi" broker \
      --listener-url "$BROKER_URL" \
      --advertised-listener-url "$BROKER_URL" \
      --storage-engine "$storage" \
      --group-initial-rebalance-delay "$BROKER_REBALANCE_DELAY" \
      >>"$BROKER_LOG" 2>&1 </dev/null &
  )
  wait_until 5 test -s "$(pid_file nisshi)" || die "nisshi did not start; log: $BROKER_LOG"
  pid=$(<"$(pid_file nisshi)")
  local deadline=$((SECONDS + BROKER_START_SECS))
  until kafka_answers "$BROKER_HOST" "$BROKER_PORT"; do
    pid_gone "$pid" && die "nisshi exited during start-up; log: $BROKER_LOG"
    if ((SECONDS >= deadline)); then
      # Leave no half-started broker holding the port for the next `up`.
      kill -TERM "$pid" 2>/dev/null || true
      rm -f "$(pid_file nisshi)"
      die "nisshi did not answer on $BROKER_ADDR within $BROKER_START_SECS s; log: $BROKER_LOG"
    fi
    sleep 0.2
  done
  log "nisshi is up on $BROKER_ADDR (pid $pid)"
}

broker_up() {
  if broker_external; then
    local bad
    bad=$(broker_external_check) ||
      die "EVENTPULSE_BROKERS=$(redact_url "$EVENTPULSE_BROKERS"): no answer from $bad"
    log "using the brokers in EVENTPULSE_BROKERS ($(redact_url "$EVENTPULSE_BROKERS")); starting none"
    return
  fi
  clear_stale_pid nisshi nisshi
  local pid
  if pid=$(owned_pid nisshi nisshi) && kafka_answers "$BROKER_HOST" "$BROKER_PORT"; then
    log "nisshi already running on $BROKER_ADDR (pid $pid)"
    local running wanted
    running=$(broker_storage_of "$pid") wanted=$(broker_storage_url)
    [[ $running == "$wanted" ]] ||
      log "note: nisshi runs with storage $running, not $wanted; run 'scripts/stack.sh down' then 'up' to switch"
  elif kafka_answers "$BROKER_HOST" "$BROKER_PORT"; then
    # Another checkout's stack (or a Kafka run by hand) serves the same
    # address: share it, and leave it alone on `down`.
    log "reusing the Kafka broker already on $BROKER_ADDR: $(port_owner "$BROKER_PORT"), not started by this checkout"
  elif tcp_answers "$BROKER_HOST" "$BROKER_PORT"; then
    die "$BROKER_ADDR is taken by $(port_owner "$BROKER_PORT"), which does not answer Kafka requests; stop it, or set EVENTPULSE_BROKERS to a running Kafka"
  else
    broker_start
  fi
  broker_create_topics
}

# Goes by the pid file alone, so a broker this checkout started stops even if
# EVENTPULSE_BROKERS is set now.
broker_down() { stop_owned nisshi nisshi; }

# Prints the broker's status line; non-zero when it does not answer.
broker_status() {
  local addr detail pid
  if broker_external; then
    addr=$(redact_url "$EVENTPULSE_BROKERS")
    if detail=$(broker_external_check); then
      status_line broker "$addr" healthy "external (EVENTPULSE_BROKERS), TCP connect only"
    else
      status_line broker "$addr" UNHEALTHY "no answer from $detail"
      return 1
    fi
  elif kafka_answers "$BROKER_HOST" "$BROKER_PORT"; then
    if pid=$(owned_pid nisshi nisshi); then
      detail="nisshi pid $pid, started by this checkout, storage $(broker_storage_of "$pid")"
    else
      detail="$(port_owner "$BROKER_PORT"), not started by this checkout"
    fi
    status_line broker "$BROKER_ADDR" healthy "$detail"
  elif tcp_answers "$BROKER_HOST" "$BROKER_PORT"; then
    status_line broker "$BROKER_ADDR" UNHEALTHY "held by $(port_owner "$BROKER_PORT"), which does not answer Kafka requests"
    return 1
  else
    status_line broker "$BROKER_ADDR" UNHEALTHY "no Kafka answer (log: $BROKER_LOG)"
    return 1
  fi
}

# The --storage-engine a running nisshi was started with.
broker_storage_of() {
  tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -A1 -x -- '--storage-engine' | tail -n1
}
