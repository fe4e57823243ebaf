#!/usr/bin/env bash
# EC2 user data (cloud-init runs it once, as root, on the first boot) for
# Ubuntu 24.04 LTS: installs Docker from Ubuntu's packages, clones eventpulse,
# writes infra/.env with random passwords, builds the images and starts the
# Compose stack. docs/deploy-ec2.md walks through launching an instance with it.
#
# Safe to run again by hand to update to the newest commit of EVENTPULSE_REF:
#   sudo /opt/eventpulse/infra/ec2/user-data.sh
# It pulls, rebuilds and restarts what changed, keeping infra/.env and the data.
#
# Edit the settings below before pasting it into the launch form.
set -euo pipefail

EVENTPULSE_REPO=${EVENTPULSE_REPO:-https://github.com/eventpulse/eventpulse.git}
EVENTPULSE_REF=${EVENTPULSE_REF:-main}
EVENTPULSE_DIR=${EVENTPULSE_DIR:-/opt/eventpulse}
# Consumer replicas: at most the partition count of `events` (12).
EVENTPULSE_CONSUMERS=${EVENTPULSE_CONSUMERS:-3}
# true: also start the simulated users (the `load` profile's producer).
EVENTPULSE_START_LOAD=${EVENTPULSE_START_LOAD:-false}

exec > >(tee -a /var/log/eventpulse-setup.log) 2>&1
# cloud-init may run this without HOME; docker keeps its settings there.
export HOME=${HOME:-/root}
log() { printf '%s eventpulse-setup: %s\n' "$(date -u +%FT%TZ)" "$*"; }

install_docker() {
  if docker compose version >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1; then
    return
  fi
  log "installing Docker, Compose, Buildx and git from Ubuntu's packages"
  export DEBIAN_FRONTEND=noninteractive
  # On a first boot, unattended-upgrades may hold the package lock for a while.
  apt-get -o DPkg::Lock::Timeout=600 update -q
  apt-get -o DPkg::Lock::Timeout=600 install -y -q \
    docker.io docker-compose-v2 docker-buildx git ca-certificates openssl
  systemctl enable --now docker
  # The default login user may run docker without sudo (next login).
  if id ubuntu >/dev/null 2>&1; then usermod -aG docker ubuntu; fi
}

# The release build of rdkafka and the services need more than 4 GiB on
# small instances; a swap file keeps the build from being killed.
ensure_swap() {
  local mem_kib
  mem_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
  if ((mem_kib < 8 * 1024 * 1024)) && ! swapon --show | grep -q /swapfile; then
    log "adding a 4 GiB swap file ($((mem_kib / 1024)) MiB of memory)"
    fallocate -l 4G /swapfile
    chmod 600 /swapfile
    mkswap /swapfile
    swapon /swapfile
    grep -q '^/swapfile ' /etc/fstab || echo '/swapfile none swap sw 0 0' >>/etc/fstab
  fi
}

checkout() {
  if [[ -d $EVENTPULSE_DIR/.git ]]; then
    log "updating $EVENTPULSE_DIR to $EVENTPULSE_REF"
    git -C "$EVENTPULSE_DIR" fetch --quiet origin "$EVENTPULSE_REF"
    git -C "$EVENTPULSE_DIR" checkout --quiet --detach FETCH_HEAD
  else
    log "cloning $EVENTPULSE_REPO ($EVENTPULSE_REF) into $EVENTPULSE_DIR"
    git clone --quiet --branch "$EVENTPULSE_REF" "$EVENTPULSE_REPO" "$EVENTPULSE_DIR"
  fi
  log "at commit $(git -C "$EVENTPULSE_DIR" rev-parse --short HEAD)"
}

# Random, URL-safe passwords, written once: later runs keep them (Postgres
# only reads its password when it creates its data volume).
write_env() {
  local env_file=$EVENTPULSE_DIR/infra/.env
  [[ -f $env_file ]] && return
  log "writing $env_file with random passwords"
  (
    umask 077
    {
      echo "POSTGRES_PASSWORD=$(openssl rand -hex 24)"
      echo "GRAFANA_ADMIN_PASSWORD=$(openssl rand -hex 16)"
      echo "MONITORING_BIND=127.0.0.1"
    } >"$env_file"
  )
}

start_stack() {
  local compose=(docker compose -f "$EVENTPULSE_DIR/infra/docker-compose.yml")
  log "building the images and starting the stack with $EVENTPULSE_CONSUMERS consumers"
  "${compose[@]}" build
  "${compose[@]}" up -d --remove-orphans --scale "consumer=$EVENTPULSE_CONSUMERS"
  if [[ $EVENTPULSE_START_LOAD == true ]]; then
    log "starting the producer (profile load)"
    "${compose[@]}" --profile load build producer
    "${compose[@]}" --profile load up -d producer
  fi
  "${compose[@]}" ps
}

main() {
  install_docker
  ensure_swap
  checkout
  write_env
  start_stack
  log "done. Grafana: ssh -L 3000:127.0.0.1:3000 ubuntu@<this host>, then http://localhost:3000 (admin, password in $EVENTPULSE_DIR/infra/.env)"
}

main "$@"
