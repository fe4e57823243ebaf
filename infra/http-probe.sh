#!/usr/bin/env bash
# eventpulse-probe PATH: exits 0 when the consumer's HTTP server, on the port of
# EVENTPULSE_METRICS_ADDR (default 9464), answers GET PATH with 200. The images'
# HEALTHCHECK runs it as `eventpulse-probe /healthz`; pure bash (/dev/tcp), so
# the runtime image needs no curl.
#
# Connects to 127.0.0.1: inside the container the server listens on 0.0.0.0.
set -euo pipefail

path=${1:-/healthz}
addr=${EVENTPULSE_METRICS_ADDR:-127.0.0.1:9464}
port=${addr##*:}

# shellcheck disable=SC2016
exec timeout 3 bash -c '
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  printf "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" "$2" >&3
  IFS=" " read -r _ status _ <&3
  [[ $status == 200 ]]' _ "$port" "$path"
