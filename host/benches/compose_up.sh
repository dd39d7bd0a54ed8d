#!/usr/bin/env bash
# The docker-compose baseline of the ticketing benchmark: the example stack brought up
# the seed's way, with Debian's docker-compose (1.29) and
# examples/ticketing/compose/docker-compose.yml (healthchecks, depends_on:
# service_healthy), on the same offline images as provisioner.
#
# usage: compose_up.sh up PROJECT PORT
#          brings the stack up as compose project PROJECT (so runs cannot collide) with
#          fresh generated secrets, nginx on 127.0.0.1:PORT, and returns once
#          `GET http://127.0.0.1:PORT/health` answers 200 (within 180 s, else it fails
#          with the services' last log lines and leaves the stack for inspection);
#        compose_up.sh again PROJECT PORT
#          `docker-compose up -d` once more with the same secrets: with nothing
#          changed, compose's no-op (the warm baseline);
#        compose_up.sh down PROJECT
#          removes the project's containers, networks and volumes.
# The lb service runs provisioner-offline/nginx:1.22, or the base image when that is
# not built (NGINX_IMAGE overrides both).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
file=$here/../../examples/ticketing/compose/docker-compose.yml
timeout_secs=${COMPOSE_UP_TIMEOUT:-180}

usage() {
  echo "usage: $0 up PROJECT PORT | down PROJECT" >&2
  exit 2
}

hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# Every secret the compose file needs: fresh ones for `up` (kept, 0600, for `again`),
# the kept ones for `again`, placeholders for `down` (which only needs the file to parse).
secrets() {
  local name kept=${TMPDIR:-/tmp}/compose_up-$project.env
  if [ "$1" = kept ]; then
    set -a
    # shellcheck disable=SC1090
    . "$kept"
    set +a
    return
  fi
  for name in POSTGRES_PASSWORD APP_DB_PASSWORD REDIS_ADMIN_PASSWORD REDIS_APP_PASSWORD \
    AMQP_ADMIN_PASSWORD AMQP_APP_PASSWORD; do
    export "$name=$(if [ "$1" = fresh ]; then hex 16; else echo unused; fi)"
  done
  # Garage's formats: a 32-byte hex RPC secret, `GK` + 24 hex digits, 64 hex digits.
  export GARAGE_RPC_SECRET=$(hex 32) S3_ACCESS_KEY_ID=GK$(hex 12) S3_SECRET_ACCESS_KEY=$(hex 32)
  if [ "$1" = fresh ]; then
    (umask 077 && env | grep -E '^(POSTGRES_PASSWORD|APP_DB_PASSWORD|REDIS_(ADMIN|APP)_PASSWORD|AMQP_(ADMIN|APP)_PASSWORD|GARAGE_RPC_SECRET|S3_ACCESS_KEY_ID|S3_SECRET_ACCESS_KEY)=' > "$kept")
  else
    rm -f "$kept"
  fi
}

compose() { docker-compose --ansi never -p "$project" -f "$file" "$@"; }

failed() {
  echo "compose_up: $project: $1; the stack is left up for inspection (\`$0 down $project\` removes it)" >&2
  compose ps >&2 || true
  compose logs --no-color --tail 25 >&2 || true
  exit 1
}

[ $# -ge 2 ] || usage
command=$1 project=$2
if [ -z "${NGINX_IMAGE:-}" ]; then
  export NGINX_IMAGE=provisioner-offline/nginx:1.22
  docker image inspect "$NGINX_IMAGE" >/dev/null 2>&1 || NGINX_IMAGE=provisioner-offline/base:bookworm
fi

case $command in
  up)
    [ $# -eq 3 ] || usage
    export PORT=$3
    # Fresh secrets would not open the volumes of an earlier run: start from nothing.
    if [ -n "$(docker ps -aq --filter "label=com.docker.compose.project=$project")" ] \
      || [ -n "$(docker volume ls -q --filter "label=com.docker.compose.project=$project")" ]; then
      echo "compose_up: project $project exists already; \`$0 down $project\` first" >&2
      exit 1
    fi
    secrets fresh
    # No registry here: a missing image would only fail as a pull, later and vaguer.
    images=$(sed -n 's/^ *image: *//p' "$file" | sed "s|\${NGINX_IMAGE:-[^}]*}|$NGINX_IMAGE|")
    if ! docker image inspect $images >/dev/null 2>&1; then
      for image in $images; do
        docker image inspect "$image" >/dev/null 2>&1 \
          || echo "compose_up: no image $image: build it with \`cargo xtask images\`" >&2
      done
      exit 1
    fi
    started=$(date +%s.%N)
    deadline=$(( $(date +%s) + timeout_secs ))
    # Returns once every container is started, each after its dependencies are healthy.
    timeout "$timeout_secs" docker-compose --ansi never -p "$project" -f "$file" up -d >&2 \
      || failed "docker-compose up failed"
    until curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/health" 2>/dev/null; do
      [ "$(date +%s)" -lt "$deadline" ] || failed "no 200 from http://127.0.0.1:$PORT/health within $timeout_secs s"
      sleep 0.1
    done
    echo "compose_up: $project: /health 200 after $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $started }") s" >&2
    ;;
  again)
    [ $# -eq 3 ] || usage
    export PORT=$3
    secrets kept
    docker-compose --ansi never -p "$project" -f "$file" up -d >&2 || failed "docker-compose up failed"
    ;;
  down)
    [ $# -eq 2 ] || usage
    secrets placeholder
    compose down --volumes --remove-orphans --timeout 10 >&2
    ;;
  *) usage ;;
esac
