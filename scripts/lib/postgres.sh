# shellcheck shell=bash
# PostgreSQL of the local stack on 127.0.0.1:5432 with the `eventpulse`
# database: reused when a server answers there, else installed (Debian's
# postgresql) and its cluster started. Sourced by stack.sh after common.sh.

PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=postgres
PG_DATABASE=eventpulse
PG_CLUSTER=main # Debian's cluster name: /etc/postgresql/VERSION/main
PG_URL="postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DATABASE"
PG_LOG="$EP_LOGS/postgres.log"
PG_START_SECS=30
# "VERSION CLUSTER" of the Debian cluster that `up` started, so `down` stops
# exactly that one.
PG_CLUSTER_FILE="$EP_PIDS/postgres.cluster"

pg_answers() {
  if command -v pg_isready >/dev/null; then
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2
  else
    tcp_answers "$PG_HOST" "$PG_PORT"
  fi
}

# psql without a password prompt (CI has no stdin), against DATABASE.
pg_psql() {
  local database=$1
  shift
  psql -X -q -w -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$database" "$@"
}

# The newest installed Debian PostgreSQL version that has a PG_CLUSTER cluster.
pg_cluster_version() {
  local dir
  dir=$(find /etc/postgresql -mindepth 2 -maxdepth 2 -type d -name "$PG_CLUSTER" 2>/dev/null | sort -V | tail -n1)
  [[ -n $dir ]] && basename "$(dirname "$dir")"
}

pg_start() {
  local version pid installed_now=""
  if ! command -v pg_ctlcluster >/dev/null || ! version=$(pg_cluster_version); then
    apt_install postgresql
    installed_now=1
    # The package starts its cluster where a service manager runs: reuse it.
    wait_until 5 pg_answers && {
      pg_trust_loopback "$installed_now"
      return
    }
  fi
  version=$(pg_cluster_version) || die "no PostgreSQL cluster under /etc/postgresql after installing postgresql; log: $EP_LOGS/apt.log"
  log "starting PostgreSQL $version/$PG_CLUSTER on $PG_HOST:$PG_PORT; log: $PG_LOG"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$PG_CLUSTER" start >>"$PG_LOG" 2>&1 ||
    die "pg_ctlcluster $version $PG_CLUSTER start failed; log: $PG_LOG (server log: /var/log/postgresql/postgresql-$version-$PG_CLUSTER.log)"
  wait_until "$PG_START_SECS" pg_answers ||
    die "PostgreSQL did not answer on $PG_HOST:$PG_PORT within $PG_START_SECS s; server log: /var/log/postgresql/postgresql-$version-$PG_CLUSTER.log"
  pid=$(head -n1 "/var/run/postgresql/$version-$PG_CLUSTER.pid" 2>/dev/null) || pid=""
  printf '%s\n' "$pid" >"$(pid_file postgres)"
  printf '%s %s\n' "$version" "$PG_CLUSTER" >"$PG_CLUSTER_FILE"
  pg_trust_loopback "$installed_now"
  log "PostgreSQL is up on $PG_HOST:$PG_PORT"
}

# A fresh Debian install asks for a password on TCP; the local stack (like the
# machines it mirrors) uses trust on loopback. Only a cluster this run
# installed is changed: an existing server's pg_hba.conf is the owner's call.
pg_trust_loopback() {
  local installed_now=$1 version hba
  pg_psql postgres -c 'SELECT 1' >/dev/null 2>&1 && return
  version=$(pg_cluster_version) || true
  hba="/etc/postgresql/${version:-VERSION}/$PG_CLUSTER/pg_hba.conf"
  [[ -n $installed_now && -f $hba ]] ||
    die "cannot log in as $PG_USER on $PG_HOST:$PG_PORT without a password; allow trust for 127.0.0.1/32 and ::1/128 in pg_hba.conf"
  log "allowing trust auth on loopback in $hba (fresh dev install)"
  as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$PG_CLUSTER" reload >>"$PG_LOG" 2>&1 ||
    die "reloading PostgreSQL $version/$PG_CLUSTER failed; log: $PG_LOG"
  wait_until 10 pg_psql postgres -c 'SELECT 1' >/dev/null 2>&1 ||
    die "still cannot log in as $PG_USER on $PG_HOST:$PG_PORT after editing $hba"
}

pg_create_database() {
  local exists
  exists=$(pg_psql postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE'" 2>>"$PG_LOG") ||
    die "cannot query databases as $PG_USER on $PG_HOST:$PG_PORT; log: $PG_LOG"
  [[ $exists == 1 ]] && return
  # A concurrent `up` may win the race: "already exists" is fine.
  if pg_psql postgres -c "CREATE DATABASE $PG_DATABASE OWNER $PG_USER" >>"$PG_LOG" 2>&1 ||
    [[ $(pg_psql postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE'") == 1 ]]; then
    log "created database $PG_DATABASE (owner $PG_USER)"
  else
    die "creating database $PG_DATABASE on $PG_HOST:$PG_PORT failed; log: $PG_LOG"
  fi
}

pg_up() {
  ensure_state_dirs
  if pg_answers; then
    log "reusing the PostgreSQL that answers on $PG_HOST:$PG_PORT"
  else
    pg_start
  fi
  # The server may be reachable while this machine lacks the client.
  command -v psql >/dev/null || apt_install postgresql-client
  pg_psql postgres -c 'SELECT 1' >/dev/null 2>>"$PG_LOG" ||
    die "cannot log in as $PG_USER on $PG_HOST:$PG_PORT without a password; allow trust for 127.0.0.1/32 in pg_hba.conf (log: $PG_LOG)"
  pg_create_database
}

# Stops the cluster only when this checkout's `up` started it (its pid file
# still names the running postmaster).
pg_down() {
  local version cluster
  if owned_pid postgres postgres >/dev/null && [[ -s $PG_CLUSTER_FILE ]]; then
    read -r version cluster <"$PG_CLUSTER_FILE"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" stop >>"$PG_LOG" 2>&1 ||
      die "pg_ctlcluster $version $cluster stop failed; log: $PG_LOG"
    log "stopped PostgreSQL $version/$cluster"
  fi
  rm -f "$(pid_file postgres)" "$PG_CLUSTER_FILE"
}

# Prints Postgres's status line; non-zero unless the eventpulse database answers.
pg_status() {
  local detail="not started by this checkout" pid
  pid=$(owned_pid postgres postgres) && detail="pid $pid, started by this checkout"
  if ! pg_answers; then
    status_line postgres "$PG_URL" UNHEALTHY "no answer on $PG_HOST:$PG_PORT (log: $PG_LOG)"
    return 1
  fi
  if command -v psql >/dev/null && ! pg_psql "$PG_DATABASE" -c 'SELECT 1' >/dev/null 2>&1; then
    status_line postgres "$PG_URL" UNHEALTHY "server answers, but database $PG_DATABASE does not (run: scripts/stack.sh up)"
    return 1
  fi
  status_line postgres "$PG_URL" healthy "$detail"
}
