#!/usr/bin/env bash
# The `docker stack deploy` baseline of the Swarm benchmark (host/benches/swarm.rs):
# the example stack as a Swarm user deploys it by hand
# (examples/ticketing/compose/docker-stack.yml), on the same cluster and images as
# provisioner.
#
# usage: stack_deploy.sh up STACK PORT      deploy with fresh secrets; returns once
#                                           /health answers 200 through nginx on
#                                           DATA_NODE_ADDR:PORT (within 180 s)
#        stack_deploy.sh down STACK         remove the stack and, on every node, its volumes
# Needs DOCKER_HOST (a manager), REGISTRY (what the nodes pull from), DATA_NODE (the
# hostname the stateful services are pinned to), DATA_NODE_ADDR and NODE_ADDRS (every
# node's engine address, space-separated).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
file=$here/../../examples/ticketing/compose/docker-stack.yml
timeout_secs=${STACK_UP_TIMEOUT:-180}
: "${DOCKER_HOST:?}" "${REGISTRY:?}" "${DATA_NODE:?}" "${DATA_NODE_ADDR:?}" "${NODE_ADDRS:?}"

hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

command=${1:?usage: $0 up STACK PORT | down STACK} stack=${2:?}
case $command in
  up)
    export PORT=${3:?}
    for name in POSTGRES_PASSWORD APP_DB_PASSWORD REDIS_ADMIN_PASSWORD REDIS_APP_PASSWORD AMQP_ADMIN_PASSWORD AMQP_APP_PASSWORD; do
      export "$name=$(hex 16)"
    done
    export GARAGE_RPC_SECRET=$(hex 32) S3_ACCESS_KEY_ID=GK$(hex 12) S3_SECRET_ACCESS_KEY=$(hex 32)
    deadline=$(( $(date +%s) + timeout_secs ))
    (cd "$(dirname "$file")" && docker stack deploy --resolve-image never -c "$file" "$stack" >&2)
    until curl -fsS -o /dev/null --max-time 2 "http://$DATA_NODE_ADDR:$PORT/health" 2>/dev/null; do
      if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "stack_deploy: $stack: no 200 from http://$DATA_NODE_ADDR:$PORT/health within $timeout_secs s" >&2
        docker stack ps --no-trunc "$stack" >&2 || true
        exit 1
      fi
      sleep 0.1
    done
    ;;
  down)
    docker stack rm "$stack" >&2
    for node in $NODE_ADDRS; do
      # The tasks' containers go a moment after the services.
      for _ in $(seq 1 120); do
        [ -z "$(docker -H "tcp://$node:2375" ps -aq --filter "label=com.docker.stack.namespace=$stack")" ] && break
        sleep 0.5
      done
      volumes=$(docker -H "tcp://$node:2375" volume ls -q --filter "label=com.docker.stack.namespace=$stack")
      [ -z "$volumes" ] || docker -H "tcp://$node:2375" volume rm $volumes >/dev/null
    done
    for _ in $(seq 1 60); do
      [ -z "$(docker network ls -q --filter "label=com.docker.stack.namespace=$stack")" ] && break
      sleep 0.5
    done
    ;;
  *) echo "usage: $0 up STACK PORT | down STACK" >&2; exit 2 ;;
esac
