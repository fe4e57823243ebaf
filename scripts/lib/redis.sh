# shellcheck shell=bash
# Redis of the local stack on 127.0.0.1:6379: reused when one answers there,
# else installed (Debian's redis-server) and started. Sourced by stack.sh
# after common.sh.

REDIS_HOST=127.0.0.1
REDIS_PORT=6379
REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT"
REDIS_DIR="$EP_STATE/redis"
REDIS_LOG="$EP_LOGS/redis.log"
REDIS_START_SECS=15

redis_start() {
  mkdir -p "$REDIS_DIR"
  log "starting redis-server on $REDIS_HOST:$REDIS_PORT; log: $REDIS_LOG"
  # Dedup keys are a cache with a TTL: nothing is saved to disk. "-::1" binds
  # IPv6 loopback only where the machine has it. Errors before it daemonizes
  # go to stderr, so they are appended to the same log redis then writes.
  # shellcheck disable=SC2094
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
    --save "" --appendonly no --dir "$REDIS_DIR" --logfile "$REDIS_LOG" \
    --pidfile "$(pid_file redis)" >>"$REDIS_LOG" 2>&1 ||
    die "redis-server failed to start; log: $REDIS_LOG"
  wait_until "$REDIS_START_SECS" redis_answers "$REDIS_HOST" "$REDIS_PORT" ||
    die "redis did not answer PING on $REDIS_HOST:$REDIS_PORT within $REDIS_START_SECS s; log: $REDIS_LOG"
  wait_until 5 test -s "$(pid_file redis)" || true
  log "redis is up on $REDIS_URL"
}

redis_up() {
  clear_stale_pid redis redis-server
  local pid
  if pid=$(owned_pid redis redis-server) && redis_answers "$REDIS_HOST" "$REDIS_PORT"; then
    log "redis already running on $REDIS_URL (pid $pid)"
    return
  elif redis_answers "$REDIS_HOST" "$REDIS_PORT"; then
    log "reusing the redis that answers on $REDIS_URL"
    return
  fi
  tcp_answers "$REDIS_HOST" "$REDIS_PORT" &&
    die "$REDIS_HOST:$REDIS_PORT is taken by $(port_owner "$REDIS_PORT"), which does not answer Redis PING; stop it"
  if ! command -v redis-server >/dev/null; then
    apt_install redis-server
    # The package may have started its own service: reuse it if so.
    if wait_until 3 redis_answers "$REDIS_HOST" "$REDIS_PORT"; then
      log "reusing the redis that the redis-server package started on $REDIS_URL"
      return
    fi
  fi
  redis_start
}

redis_down() { stop_owned redis redis-server; }

# Prints redis's status line; non-zero when it does not answer PING.
redis_status() {
  local detail="not started by this checkout" pid
  pid=$(owned_pid redis redis-server) && detail="pid $pid, started by this checkout"
  if redis_answers "$REDIS_HOST" "$REDIS_PORT"; then
    status_line redis "$REDIS_URL" healthy "$detail"
  else
    status_line redis "$REDIS_URL" UNHEALTHY "no answer to PING (log: $REDIS_LOG)"
    return 1
  fi
}
